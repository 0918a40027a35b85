"""Every benchmark `make bench` runs still runs: each one, small, ends well and prints its goals.

The figures themselves are not checked (benchmarks are not timed tests); a benchmark that no
test runs would rot. bench_sync has its own test (test_sync_bench.py); bench_install is left to
`make bench`, since its first install downloads the CUDA build of PyTorch on a fresh machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SMALL = {
    "bench_scale.py": ["--models", "4", "--examples", "6"],
    "bench_release.py": ["--models", "4"],
    "bench_plan.py": ["--models", "20"],
    "bench_train.py": ["--small"],
    "bench_startup.py": ["--runs", "1"],
}


def test_every_benchmark_is_run_by_a_test() -> None:
    shipped = {p.name for p in BENCHMARKS.glob("bench_*.py")}
    assert shipped == {*SMALL, "bench_sync.py", "bench_install.py"}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALL))
def test_a_small_run_prints_its_goals(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *SMALL[script]],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    goals = [line for line in done.stdout.splitlines() if "(goal" in line]
    assert goals, done.stdout[-2000:]
