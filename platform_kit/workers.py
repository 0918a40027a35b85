"""Worker processes that run trainers, and the pool that owns them.

A task carries everything a trainer needs (rows, params, an output directory), so a worker needs
no store and no MLflow. Trainers: ``package.module:function`` called as
``function(rows, params, out_dir) -> metrics``, or ``{command: "prog {data} {out}"}``: ``{data}``
is a CSV file of the rows (``{data_jsonl}`` the same as JSON lines), ``{out}`` a directory where
the command writes ``metrics.json`` and any artifacts (the servable model in ``{out}/model``).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import functools
import importlib
import json
import multiprocessing
import os
import shlex
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from platform_kit import environment
from platform_kit.config import CommandTrainer, Trainer
from platform_kit.fingerprints import artifact_digest
from platform_kit.store.base import Row
from platform_kit.tracking import tags


@dataclass(frozen=True)
class Task:
    """One model to train, sent to a worker process."""

    name: str
    trainer: Trainer
    params: Mapping[str, Any]
    rows: list[Row]
    out_dir: str
    root: str  # the project: trainers import from it, commands run in it


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back: metrics, or the error that stopped the trainer."""

    name: str
    metrics: dict[str, float] | None
    error: str | None
    seconds: float
    # How the model was made, for its run and version: the environment (env.*), the artifacts'
    # digest and the trainer's determinism declaration (see made_tags).
    tags: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------- in the worker


def _init_worker(root: str) -> None:
    # Pool workers outlive a parent killed with SIGKILL; training for nobody wastes the GPU.
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    if root not in sys.path:
        sys.path.insert(0, root)


@functools.cache
def _one_torch_thread() -> None:
    # A worker per core: more torch threads would only fight over the same cores. Imported for
    # Python trainers only: a command trainer's worker starts faster without torch.
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def run_task(task: Task) -> Outcome:
    """Run one trainer; its failure is returned, not raised."""
    started = time.perf_counter()
    out_dir = Path(task.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(task.trainer, CommandTrainer):
            metrics = _run_command(task.trainer.command, task.rows, out_dir, Path(task.root))
            declared = (task.trainer.deterministic, task.trainer.tolerance)
        else:
            _one_torch_thread()
            module_name, function_name = task.trainer.split(":", 1)
            module = importlib.import_module(module_name)
            metrics = getattr(module, function_name)(task.rows, dict(task.params), out_dir)
            declared = (
                bool(getattr(module, "DETERMINISTIC", False)),
                float(getattr(module, "TOLERANCE", 0.0)),
            )
        clean = _numbers(metrics, task.name)
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
        return Outcome(
            task.name, None, f"{type(exc).__name__}: {exc}{at}", time.perf_counter() - started
        )
    seconds = time.perf_counter() - started
    return Outcome(task.name, clean, None, seconds, made_tags(out_dir, *declared))


def made_tags(out_dir: Path, deterministic: bool, tolerance: float) -> dict[str, str]:
    """The tags saying how a model was made: where, with what output, and how exactly a
    retraining must match it (a trainer declares itself deterministic, or a metric tolerance:
    ``DETERMINISTIC``/``TOLERANCE`` in a Python trainer's module, the same keys of a command)."""
    return {
        **environment.describe(),
        tags.ARTIFACT_DIGEST: artifact_digest(out_dir),
        tags.DETERMINISTIC: "true" if deterministic else "false",
        tags.TOLERANCE: repr(float(tolerance)),
    }


def _numbers(metrics: Any, name: str) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"the trainer of {name!r} returned {type(metrics).__name__}, not metrics")
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"metric {key!r} of {name!r} is {value!r}, not a number")
        out[str(key)] = float(value)
    return out


def _run_command(command: str, rows: Sequence[Row], out_dir: Path, root: Path) -> dict[str, Any]:
    work = out_dir.parent
    data_csv, data_jsonl = work / "data.csv", work / "data.jsonl"
    columns = list(rows[0]) if rows else []
    with data_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")  # \r\n would confuse awk and friends
        writer.writerow(columns)
        writer.writerows([["" if r.get(c) is None else r.get(c) for c in columns] for r in rows])
    with data_jsonl.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    paths = {"data": str(data_csv), "data_jsonl": str(data_jsonl), "out": str(out_dir)}
    try:
        argv = [token.format(**paths) for token in shlex.split(command)]
    except (KeyError, ValueError, IndexError) as exc:
        raise ValueError(
            f"command {command!r}: only {{data}}, {{data_jsonl}} and {{out}} may be used ({exc})"
        ) from None
    with (work / "command.log").open("wb") as log:
        done = subprocess.run(argv, cwd=root, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = (work / "command.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"command exited with {done.returncode}: {' | '.join(tail)}")
    metrics_file = out_dir / "metrics.json"
    if not metrics_file.is_file():
        raise RuntimeError(f"command wrote no {{out}}/metrics.json (command: {command})")
    metrics: dict[str, Any] = json.loads(metrics_file.read_text())
    return metrics


# ---------------------------------------------------------------------------- in the parent


class WorkerPool:
    """Owns the worker processes: starts them on first use and outlives a crashed one.

    A worker that dies (killed, out of memory) breaks its process pool: the tasks on it fail with
    :class:`BrokenProcessPool`, and the next :meth:`submit` starts a new pool for the rest. At
    most ``backlog`` tasks are in flight; :meth:`submit` waits for one to finish, which bounds
    the rows held in memory.
    """

    def __init__(self, workers: int, root: Path, *, backlog: int) -> None:
        self.workers = max(1, workers)
        self.root = root
        self._pool: cf.ProcessPoolExecutor | None = None
        self._slots = threading.Semaphore(max(1, backlog))
        self._futures: list[cf.Future[Outcome]] = []
        self._lock = threading.Lock()

    def submit(self, task: Task) -> cf.Future[Outcome]:
        """Start ``task`` on a worker (waiting while the backlog is full)."""
        self._slots.acquire()
        try:
            try:
                future = self._current().submit(run_task, task)
            except BrokenProcessPool:  # a crashed worker broke the pool: the rest get a new one
                self._replace()
                future = self._current().submit(run_task, task)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        with self._lock:
            self._futures.append(future)
        return future

    def cancel_waiting(self) -> None:
        """Cancel the tasks no worker has started (callable from any thread)."""
        with self._lock:
            waiting = list(self._futures)
        for future in waiting:
            future.cancel()

    def close(self, *, cancel: bool = False) -> None:
        """Wait for the running tasks, after cancelling those not started when ``cancel``."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(cancel=True)

    def _current(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: this process holds threads and connections that must not be forked.
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(str(self.root),),
            )
        return self._pool

    def _replace(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._pool = None
