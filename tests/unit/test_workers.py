"""The worker pool: a crashed worker costs its own model, and the pool goes on with a new one."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from platform_kit.config import CommandTrainer
from platform_kit.workers import Task, WorkerPool

# The worker runs the command in a child process: killing its parent kills the worker itself.
CRASH = CommandTrainer("sh -c 'kill -9 $PPID; sleep 5'")
COUNT = CommandTrainer("sh count.sh {data} {out}")
COUNT_SH = """rows=$(awk 'END { print NR - 1 }' "$1")\nprintf '{"rows": %s}\\n' "$rows" > "$2/metrics.json"\n"""


def task(root: Path, name: str, trainer: CommandTrainer, rows: int = 3) -> Task:
    out = root / "work" / name / "out"
    return Task(name, trainer, {}, [{"x": i} for i in range(rows)], str(out), str(root))


def test_a_crashed_worker_breaks_one_pool_and_the_next_task_gets_a_new_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "count.sh").write_text(COUNT_SH)
    with WorkerPool(1, tmp_path, backlog=2) as pool:
        crashed = pool.submit(task(tmp_path, "a", CRASH))
        with pytest.raises(BrokenProcessPool):
            crashed.result(timeout=60)
        after = pool.submit(task(tmp_path, "b", COUNT, rows=5))
        outcome = after.result(timeout=60)
        pool.close()
    assert outcome.error is None and outcome.metrics == {"rows": 5.0}


def test_no_process_starts_until_a_task_is_submitted(tmp_path: Path) -> None:
    with WorkerPool(4, tmp_path, backlog=8) as pool:
        assert pool._pool is None
