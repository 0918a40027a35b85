"""Train models in a local worker pool and record them in MLflow.

:func:`train` reads each model's rows as of the exact commit its ref resolves to, skips models
whose fingerprint, trainer and params already have a version (unless forced), and trains the rest
in worker processes, N at once. While workers train, threads in this process log finished models
to MLflow (one call costs about 60 ms, so bookkeeping overlaps training rather than adding up):
a run with params, metrics, tags and artifacts, then a version registered only after its
artifacts are stored, then the ``production`` alias when ``promote_if`` passes or no version holds
it yet. A failing model is reported and does not stop the others; an MLflow server that stays
unreachable stops the run (:class:`ServiceError`), since nothing more could be recorded.

Interruptions leave nothing half-made: a version is registered only after its artifacts are
stored, and a run killed between registering a version and moving the alias is finished by the
next run (see :func:`~platform_kit.tracking.registry.interrupted_promotion`).

Trainers: ``package.module:function`` called as ``function(rows, params, out_dir) -> metrics``,
or ``{command: "prog {data} {out}"}``: ``{data}`` is a CSV file of the rows (``{data_jsonl}`` the
same as JSON lines), ``{out}`` a directory where the command writes ``metrics.json`` and any
artifacts (the servable model in ``{out}/model``).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import importlib
import json
import multiprocessing
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_kit import gitinfo
from platform_kit.catalog import Model, expand_models, select_models
from platform_kit.config import CommandTrainer, Config, PromoteIf, Trainer
from platform_kit.errors import PlatformKitError, ServiceError, UsageError
from platform_kit.plan import ModelState, Reason, Shard, decide
from platform_kit.plan_inputs import as_recorded, model_state
from platform_kit.rows import read_rows
from platform_kit.store.base import Row, Store
from platform_kit.tracking import tags
from platform_kit.tracking.registry import (
    AliasState,
    ModelRegistry,
    RunRecord,
    interrupted_promotion,
)

TRAINED, SKIPPED, FAILED = "trained", "skipped", "failed"
LOG_THREADS = 4  # MLflow calls in flight at once: enough to hide ~60 ms per call


@dataclass
class ModelResult:
    name: str
    status: str  # trained | skipped | failed
    reason: str  # why it trained or was skipped; the error when it failed
    fingerprint: str | None = None
    rows: int | None = None
    version: int | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    promoted: bool = False
    promotion: str = ""  # why it was or was not promoted
    seconds: float = 0.0  # training time in the worker

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "version": self.version,
            "run_id": self.run_id,
            "metrics": self.metrics,
            "promoted": self.promoted,
            "promotion": self.promotion,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class TrainReport:
    commit: str
    branch: str
    results: list[ModelResult]
    seconds: float = 0.0

    @property
    def failed(self) -> list[ModelResult]:
        return [r for r in self.results if r.status == FAILED]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def to_json(self) -> dict[str, Any]:
        return {
            "dolt_commit": self.commit,
            "dolt_branch": self.branch,
            "trained": self.count(TRAINED),
            "skipped": self.count(SKIPPED),
            "failed": self.count(FAILED),
            "seconds": round(self.seconds, 3),
            "models": [r.to_json() for r in self.results],
        }


class Progress:
    """Callbacks for a progress display; the default does nothing."""

    def start(self, total: int) -> None:
        """``total`` models will be reported."""

    def done(self, result: ModelResult) -> None:
        """One model finished (trained, skipped or failed)."""


# ---------------------------------------------------------------------------- the worker side


@dataclass(frozen=True)
class _Task:
    name: str
    trainer: Trainer
    params: Mapping[str, Any]
    rows: list[Row]
    out_dir: str
    root: str


@dataclass(frozen=True)
class _Outcome:
    name: str
    metrics: dict[str, float] | None
    error: str | None
    seconds: float


def _init_worker(root: str) -> None:
    # Pool workers outlive a parent killed with SIGKILL; training for nobody wastes the GPU.
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    # A worker per core: more torch threads would only fight over the same cores.
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # command trainers need no torch
        pass


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _run_task(task: _Task) -> _Outcome:
    started = time.perf_counter()
    out_dir = Path(task.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(task.trainer, CommandTrainer):
            metrics = _run_command(task.trainer.command, task.rows, out_dir, Path(task.root))
        else:
            module_name, function_name = task.trainer.split(":", 1)
            function = getattr(importlib.import_module(module_name), function_name)
            metrics = function(task.rows, dict(task.params), out_dir)
        clean = _numbers(metrics, task.name)
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
        return _Outcome(
            task.name, None, f"{type(exc).__name__}: {exc}{at}", time.perf_counter() - started
        )
    return _Outcome(task.name, clean, None, time.perf_counter() - started)


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


# ---------------------------------------------------------------------------- promotion


def promotion_decision(
    promote_if: PromoteIf | None,
    metrics: Mapping[str, float],
    current: int | None,
    alias: str = "production",
) -> tuple[bool, str]:
    """Whether a new version takes the alias, and why (or why not)."""
    if current is None:
        return True, f"promoted: no {alias} version yet"
    if promote_if is None:
        return True, "promoted: no promote_if"
    value = metrics.get(promote_if.metric)
    bounds = " and ".join(
        f"{word} {limit:g}"
        for word, limit in (("min", promote_if.min), ("max", promote_if.max))
        if limit is not None
    )
    if value is None:
        return False, f"not promoted: no metric {promote_if.metric!r} (promote_if needs it)"
    if promote_if.passes(metrics):
        return True, f"promoted: {promote_if.metric} {value:.4g} meets {bounds}"
    return (
        False,
        f"not promoted: {promote_if.metric} {value:.4g} fails {bounds}; {alias} stays v{current}",
    )


# ---------------------------------------------------------------------------- the parent side


@dataclass
class _Job:
    model: Model
    result: ModelResult
    work: Path
    tags: dict[str, str]


def train(
    config: Config,
    store: Store,
    registry: ModelRegistry,
    *,
    names: Sequence[str] | None = None,
    shard: Shard | None = None,
    ref: str | None = None,
    workers: int = 2,
    force: bool = False,
    progress: Progress | None = None,
) -> TrainReport:
    """Train the named models (or a shard's) at ``ref`` (default: the main branch).

    Raises:
        UsageError: bad arguments or an unknown model name.
    Failures of single models are reported in the result, not raised.
    """
    started = time.perf_counter()
    progress = progress or Progress()
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if shard is not None:
        ref = shard.ref
        force = force or shard.force
    branch_ref = ref or config.dolt.main_branch
    commit = store.resolve(branch_ref)
    branch = _branch_of(store, branch_ref, commit, config.dolt.main_branch)
    models = expand_models(config, store, commit)
    wanted = list(shard.models) if shard is not None else list(names or [])
    chosen = select_models(models, wanted) if wanted else models
    progress.start(len(chosen))
    versions = registry.versions([m.name for m in chosen])
    recorded = as_recorded(versions)
    aliases = registry.alias_states()
    base_tags = _base_tags(config, commit, branch)

    results: dict[str, ModelResult] = {}
    code_cache: dict[tuple[str, str], str] = {}
    lock = threading.Lock()
    temp_root = Path(tempfile.mkdtemp(prefix="platform-kit-train-"))
    futures: list[cf.Future[_Outcome]] = []
    lost: list[ServiceError] = []  # MLflow stayed unreachable: what cannot be recorded stops

    def finish(result: ModelResult) -> None:
        with lock:
            results[result.name] = result
        progress.done(result)

    def give_up(error: ServiceError) -> None:
        with lock:
            lost.append(error)
        for future in list(futures):
            future.cancel()  # only those not yet running

    slots = threading.Semaphore(workers * 4)
    logger = cf.ThreadPoolExecutor(max_workers=LOG_THREADS, thread_name_prefix="mlflow")
    pool: cf.ProcessPoolExecutor | None = None
    try:
        for index, read in enumerate(read_rows(store, chosen, commit)):
            if lost:
                break
            model, rows = read.model, read.rows
            if read.error is not None or rows is None:
                finish(ModelResult(model.name, FAILED, f"reading its rows: {read.error}"))
                continue
            state = model_state(model, config.root, rows, code_cache)
            decision = decide(state, recorded.get(model.name, []), force=force)
            result = ModelResult(
                model.name,
                TRAINED if decision.train else SKIPPED,
                _reason_text(decision.reason, decision.detail),
                fingerprint=state.fingerprint,
                rows=state.rows,
            )
            if not decision.train:
                state_now = aliases.get(model.name, AliasState([], None))
                pending = interrupted_promotion(versions.get(model.name, []), state_now)
                if pending is not None:
                    _finish_promotion(registry, result, pending, state_now)
                finish(result)
                continue
            work = temp_root / f"{index:05d}"
            job = _Job(model, result, work, _model_tags(base_tags, model, state, rows))
            task = _Task(
                model.name,
                model.config.trainer,
                dict(model.params),
                rows,
                str(work / "out"),
                str(config.root),
            )
            slots.acquire()  # bounds the rows held in memory while workers are busy
            try:
                pool = pool or _new_pool(min(workers, len(chosen)), config.root)
                future = pool.submit(_run_task, task)
            except BrokenProcessPool:  # a crashed worker breaks the pool: the rest get a new one
                pool.shutdown(wait=False)  # type: ignore[union-attr]
                pool = _new_pool(min(workers, len(chosen)), config.root)
                future = pool.submit(_run_task, task)
            futures.append(future)
            future.add_done_callback(lambda _: slots.release())
            future.add_done_callback(
                lambda f, job=job: logger.submit(  # type: ignore[misc]
                    _record, registry, job, f, aliases, finish, give_up, lost
                )
            )
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=bool(lost))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        logger.shutdown(wait=True)
        shutil.rmtree(temp_root, ignore_errors=True)
    if lost:
        done = sum(1 for r in results.values() if r.status != FAILED)
        raise ServiceError(
            f"{lost[0].message}; training stopped with {done} of {len(chosen)} models done",
            hint="bring MLflow back ('platform-kit services up') and rerun: recorded models are"
            " skipped, the rest train",
        ) from lost[0]
    order = {m.name: i for i, m in enumerate(chosen)}
    return TrainReport(
        commit=commit,
        branch=branch,
        results=sorted(results.values(), key=lambda r: order[r.name]),
        seconds=time.perf_counter() - started,
    )


def _new_pool(workers: int, root: Path) -> cf.ProcessPoolExecutor:
    # spawn: this process holds threads and connections that must not be forked.
    return cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(str(root),),
    )


def _record(
    registry: ModelRegistry,
    job: _Job,
    future: cf.Future[_Outcome],
    aliases: Mapping[str, AliasState],
    finish: Callable[[ModelResult], None],
    give_up: Callable[[ServiceError], None],
    lost: Sequence[ServiceError],
) -> None:
    """Log one finished model to MLflow (runs on a logging thread)."""
    result = job.result
    if future.cancelled() or lost:  # no point in waiting out MLflow's retries once more
        result.status, result.reason = FAILED, "not recorded: the run stopped (MLflow unreachable)"
        shutil.rmtree(job.work, ignore_errors=True)
        finish(result)
        return
    try:
        outcome = future.result()
    except Exception as exc:  # the worker process died
        outcome = _Outcome(result.name, None, f"worker crashed: {type(exc).__name__}: {exc}", 0.0)
    result.seconds = outcome.seconds
    out_dir = job.work / "out"
    try:
        if outcome.metrics is None:
            result.status, result.reason = FAILED, outcome.error or "failed"
            run_id, _ = registry.log_run(
                RunRecord(
                    result.name,
                    job.tags,
                    job.model.params,
                    artifacts=out_dir if out_dir.is_dir() else None,
                    failed=result.reason,
                )
            )
            result.run_id = run_id
            return
        result.metrics = outcome.metrics
        run_id, artifact_uri = registry.log_run(
            RunRecord(result.name, job.tags, job.model.params, outcome.metrics, out_dir)
        )
        result.run_id = run_id
        state = aliases.get(result.name, AliasState([], None))
        promote, why = promotion_decision(
            job.model.config.promote_if, outcome.metrics, state.current, registry.alias
        )
        source = f"{artifact_uri}/model" if (out_dir / "model").is_dir() else artifact_uri
        version_tags = {
            **job.tags,
            tags.PROMOTION: why,
            **{f"{tags.METRIC_PREFIX}{k}": repr(v) for k, v in outcome.metrics.items()},
        }
        result.version = registry.register(
            result.name, run_id, source, version_tags, promote=why if promote else None, state=state
        )
        result.promotion = why
        result.promoted = promote
    except ServiceError as exc:
        result.status, result.reason = FAILED, f"recording in MLflow: {exc}"
        give_up(exc)
    except PlatformKitError as exc:
        result.status, result.reason = FAILED, f"recording in MLflow: {exc}"
    except Exception as exc:  # never lose a model's result to an unexpected error
        result.status, result.reason = FAILED, f"recording in MLflow: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(job.work, ignore_errors=True)
        finish(result)


def _finish_promotion(
    registry: ModelRegistry, result: ModelResult, version: int, state: AliasState
) -> None:
    registry.move_alias(
        result.name,
        version,
        reason=f"promoted: finishing the promotion an interrupted run began (v{version})",
        state=state,
    )
    result.version, result.promoted = version, True
    result.promotion = f"promoted: finished an interrupted promotion of version {version}"
    result.reason += f"; gave version {version} the {registry.alias} alias an interrupted run left"


def _reason_text(reason: Reason, detail: str) -> str:
    return f"{reason.value}: {detail}" if detail else reason.value


def _branch_of(store: Store, ref: str, commit: str, main: str) -> str:
    branches = store.branches()
    if ref in branches:
        return ref
    heads = sorted(name for name, head in branches.items() if head == commit)
    if main in heads:
        return main
    return heads[0] if heads else ref


def _base_tags(config: Config, commit: str, branch: str) -> dict[str, str]:
    sha = gitinfo.git_sha(config.root)
    out = {
        tags.GIT_SHA: sha or "unknown",
        tags.DOLT_COMMIT: commit,
        tags.DOLT_BRANCH: branch,
        tags.DOLT_DATABASE: config.dolt.database,
        **_github_tags(),
    }
    if sha:
        out[tags.MLFLOW_GIT_COMMIT] = sha
    return out


def _model_tags(
    base: Mapping[str, str], model: Model, state: ModelState, rows: Sequence[Row]
) -> dict[str, str]:
    return {
        **base,
        tags.MODEL_NAME: model.name,
        tags.FINGERPRINT: state.fingerprint or "",
        tags.TRAINER: state.trainer[:5000],
        tags.TRAINER_CODE: state.code,
        tags.PARAMS_HASH: state.params,
        tags.QUERY_HASH: model.query_hash(),
        tags.ROWS: str(len(rows)),
    }


def _github_tags() -> dict[str, str]:
    run = gitinfo.github_run()
    found = {tags.GITHUB_RUN_ID: run.run_id, tags.GITHUB_WORKFLOW: run.workflow}
    return {k: v for k, v in found.items() if v}
