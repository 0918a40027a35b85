"""Train models in a local worker pool and record them in the model registry (MLflow).

:func:`train` reads each model's rows as of the exact commit its ref resolves to, skips models
whose fingerprint, trainer and params already have a version (unless forced), and trains the rest
in worker processes, N at once (:mod:`platform_kit.workers`). While workers train, threads in this
process record finished models (eight MLflow calls per model, of 3 to 15 ms each, so
bookkeeping overlaps training rather than adding up): a run with params, metrics, tags and
artifacts, then a version registered only after its artifacts are stored, then the
``production`` alias when ``promote_if`` passes or no version holds it yet. A failing model is
reported and does not stop the others; an MLflow server that stays unreachable stops the run
(:class:`ServiceError`), since nothing more could be recorded.

Interruptions leave nothing half-made: a version is registered only after its artifacts are
stored, and a run killed between registering a version and moving the alias is finished by the
next run (see :func:`~platform_kit.tracking.registry.interrupted_promotion`).
"""

from __future__ import annotations

import concurrent.futures as cf
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from platform_kit import gitinfo
from platform_kit.catalog import Model, expand_models, select_models
from platform_kit.config import Config
from platform_kit.errors import PlatformKitError, ServiceError, UsageError
from platform_kit.plan import ModelState, Reason, Shard
from platform_kit.plan import decide as plan_decision
from platform_kit.plan_inputs import as_recorded, model_state
from platform_kit.promotion import Promotion, decide_promotion
from platform_kit.rows import ModelRows, read_rows
from platform_kit.store.base import Row, Store
from platform_kit.tracking import tags
from platform_kit.tracking.registry import (
    NO_ALIAS,
    AliasState,
    LoggedRun,
    ModelRegistry,
    RegistrySnapshot,
    RunRecord,
    interrupted_promotion,
)
from platform_kit.workers import Outcome, Task, WorkerPool

LOG_THREADS = 4  # MLflow calls in flight at once: keeps both of the local server's workers busy
BACKLOG_PER_WORKER = 4  # tasks queued per worker: keeps workers busy, bounds rows in memory


class ModelStatus(StrEnum):
    """What train did with a model (the ``status`` of each model in ``train --json``)."""

    TRAINED = "trained"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class ModelResult:
    name: str
    status: ModelStatus
    reason: str  # why it trained or was skipped; the error when it failed
    fingerprint: str | None = None
    rows: int | None = None
    version: int | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    promoted: bool = False
    promotion: str = ""  # why it was or was not promoted
    seconds: float = 0.0  # training time in the worker

    def fail(self, reason: str) -> None:
        self.status, self.reason = ModelStatus.FAILED, reason

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
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
        return [r for r in self.results if r.status is ModelStatus.FAILED]

    def count(self, status: ModelStatus) -> int:
        return sum(1 for r in self.results if r.status == status)

    def to_json(self) -> dict[str, Any]:
        return {
            "dolt_commit": self.commit,
            "dolt_branch": self.branch,
            "trained": self.count(ModelStatus.TRAINED),
            "skipped": self.count(ModelStatus.SKIPPED),
            "failed": self.count(ModelStatus.FAILED),
            "seconds": round(self.seconds, 3),
            "models": [r.to_json() for r in self.results],
        }


class Progress:
    """Callbacks for a progress display; the default does nothing."""

    def start(self, total: int) -> None:
        """``total`` models will be reported."""

    def done(self, result: ModelResult) -> None:
        """One model finished (trained, skipped or failed)."""


# ---------------------------------------------------------------------------- the run


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
    snapshot: RegistrySnapshot | None = None,
) -> TrainReport:
    """Train the named models (or a shard's) at ``ref`` (default: the main branch).

    ``snapshot``: the registry as the caller just read it (the plan's reads); default: read here.

    Raises:
        UsageError: bad arguments or an unknown model name.
        ServiceError: MLflow stayed unreachable (what was recorded stays; a rerun skips it).
    Failures of single models are reported in the result, not raised.
    """
    started = time.perf_counter()
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    target = select_target(config, store, names=names, shard=shard, ref=ref, force=force)
    run = TrainRun(config, store, registry, target, progress or Progress(), snapshot)
    run.execute(workers)
    return run.report(time.perf_counter() - started)


@dataclass(frozen=True)
class Target:
    """What a train call works on: models at one exact Dolt commit."""

    commit: str
    branch: str  # the branch the commit was named by (or one whose head it is)
    models: list[Model]
    force: bool


def select_target(
    config: Config,
    store: Store,
    *,
    names: Sequence[str] | None,
    shard: Shard | None,
    ref: str | None,
    force: bool,
) -> Target:
    """The commit and the models to train: a shard's, the named ones, or every model."""
    if shard is not None:
        ref = shard.ref
        force = force or shard.force
    branch_ref = ref or config.dolt.main_branch
    commit = store.resolve(branch_ref)
    branch = _branch_of(store, branch_ref, commit, config.dolt.main_branch)
    models = expand_models(config, store, commit)
    wanted = list(shard.models) if shard is not None else list(names or [])
    chosen = select_models(models, wanted) if wanted else models
    return Target(commit, branch, chosen, force)


@dataclass
class _Job:
    """A model on its way through a worker to the registry."""

    model: Model
    result: ModelResult
    work: Path  # the model's scratch directory; its trainer writes to work/out
    tags: dict[str, str]
    task: Task

    @property
    def out_dir(self) -> Path:
        return self.work / "out"


class TrainRun:
    """One train call: decides each model, submits those to train, records what they give.

    Deciding and submitting happen on the calling thread, recording on logging threads; the
    results and the "MLflow is gone" flag are shared under a lock.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        registry: ModelRegistry,
        target: Target,
        progress: Progress,
        snapshot: RegistrySnapshot | None = None,
    ) -> None:
        self.config, self.store, self.registry = config, store, registry
        self.target = target
        self.progress = progress
        progress.start(len(target.models))
        names = {m.name for m in target.models}
        snapshot = snapshot or registry.snapshot(names)
        self.versions = {n: v for n, v in snapshot.versions.items() if n in names}
        self.recorded = as_recorded(self.versions)
        self.aliases = snapshot.states
        self.base_tags = _base_tags(config, target.commit, target.branch)
        self.results: dict[str, ModelResult] = {}
        self.lost: list[ServiceError] = []  # MLflow stayed unreachable: nothing more is recorded
        self._code_cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._pool: WorkerPool | None = None

    def execute(self, workers: int) -> None:
        """Decide, train and record every model; returns when all are recorded (or given up)."""
        size = min(workers, len(self.target.models))
        with (
            tempfile.TemporaryDirectory(
                prefix="platform-kit-train-", ignore_cleanup_errors=True
            ) as scratch,
            cf.ThreadPoolExecutor(LOG_THREADS, thread_name_prefix="mlflow") as logger,
            WorkerPool(size, self.config.root, backlog=workers * BACKLOG_PER_WORKER) as pool,
        ):
            self._pool = pool
            reads = read_rows(self.store, self.target.models, self.target.commit)
            for index, read in enumerate(reads):
                if self.lost:
                    break
                job = self.decide(read, Path(scratch) / f"{index:05d}")
                if job is not None:
                    self.submit(pool, logger, job)
            pool.close(cancel=bool(self.lost))  # then the logger waits for the last records

    def decide(self, read: ModelRows, work: Path) -> _Job | None:
        """A job when the model trains; otherwise its result is final (failed to read its rows,
        or skipped, after finishing a promotion an interrupted run left)."""
        model = read.model
        if read.error is not None or read.rows is None:
            self._finish(
                ModelResult(model.name, ModelStatus.FAILED, f"reading its rows: {read.error}")
            )
            return None
        rows = read.rows
        state = model_state(model, self.config.root, rows, self._code_cache)
        decision = plan_decision(state, self.recorded.get(model.name, []), force=self.target.force)
        result = ModelResult(
            model.name,
            ModelStatus.TRAINED if decision.train else ModelStatus.SKIPPED,
            _reason_text(decision.reason, decision.detail),
            fingerprint=state.fingerprint,
            rows=state.rows,
        )
        if not decision.train:
            self._finish_promotion(result)
            self._finish(result)
            return None
        task = Task(
            model.name,
            model.config.trainer,
            dict(model.params),
            rows,
            str(work / "out"),
            str(self.config.root),
        )
        return _Job(model, result, work, _model_tags(self.base_tags, model, state, rows), task)

    def submit(self, pool: WorkerPool, logger: cf.ThreadPoolExecutor, job: _Job) -> None:
        """Send the job to a worker; a logging thread records it when the worker is done."""
        future = pool.submit(job.task)
        future.add_done_callback(lambda f: logger.submit(self.record, job, f))

    def record(self, job: _Job, future: cf.Future[Outcome]) -> None:
        """Log one finished model to the registry (on a logging thread); never raises."""
        result = job.result
        try:
            if future.cancelled() or self.lost:  # no point in waiting out MLflow's retries again
                result.fail("not recorded: the run stopped (MLflow unreachable)")
                return
            outcome = _outcome(future, result.name)
            result.seconds = outcome.seconds
            job.tags.update(outcome.tags)  # env.*, artifact digest, determinism (workers.py)
            if outcome.metrics is None:
                result.fail(outcome.error or "failed")
                artifacts = job.out_dir if job.out_dir.is_dir() else None
                record = RunRecord(
                    result.name,
                    job.tags,
                    job.model.params,
                    artifacts=artifacts,
                    failed=result.reason,
                )
                result.run_id = self.registry.log_run(record).run_id
            else:
                self._register(job, outcome.metrics)
        except ServiceError as exc:
            result.fail(f"recording in MLflow: {exc}")
            self._give_up(exc)
        except PlatformKitError as exc:
            result.fail(f"recording in MLflow: {exc}")
        except Exception as exc:  # never lose a model's result to an unexpected error
            result.fail(f"recording in MLflow: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(job.work, ignore_errors=True)
            self._finish(result)

    def report(self, seconds: float) -> TrainReport:
        """The results in the order the models were selected.

        Raises:
            ServiceError: MLflow stayed unreachable, so the run stopped early.
        """
        if self.lost:
            done = sum(1 for r in self.results.values() if r.status is not ModelStatus.FAILED)
            raise ServiceError(
                f"{self.lost[0].message}; training stopped with {done} of "
                f"{len(self.target.models)} models done",
                hint="bring MLflow back ('platform-kit services up') and rerun: recorded models are"
                " skipped, the rest train",
            ) from self.lost[0]
        order = {m.name: i for i, m in enumerate(self.target.models)}
        return TrainReport(
            commit=self.target.commit,
            branch=self.target.branch,
            results=sorted(self.results.values(), key=lambda r: order[r.name]),
            seconds=seconds,
        )

    # -- steps

    def _register(self, job: _Job, metrics: dict[str, float]) -> None:
        """Log the run, register its version, and move the alias when the version earns it."""
        result, registry = job.result, self.registry
        result.metrics = metrics
        run = registry.log_run(
            RunRecord(result.name, job.tags, job.model.params, metrics, job.out_dir)
        )
        result.run_id = run.run_id
        state = self.aliases.get(result.name, NO_ALIAS)
        promotion = decide_promotion(
            job.model.config.promote_if, metrics, state.current, registry.alias
        )
        if not promotion.promote:
            self._create_version(job, run, state, promotion)
            return
        # Another runner may promote this model meanwhile: decide again on the alias as it is
        # now, under a lock that holds across machines (Dolt's GET_LOCK).
        with self.store.lock(f"promotion/{result.name}"):
            if result.name not in self.aliases and self._create_first(job, run, promotion):
                return  # no model when this run began and none now: creating it was the test
            state = registry.alias_state(result.name, missing_ok=True)
            promotion = decide_promotion(
                job.model.config.promote_if, metrics, state.current, registry.alias
            )
            self._create_version(job, run, state, promotion)

    def _create_version(
        self, job: _Job, run: LoggedRun, state: AliasState, promotion: Promotion
    ) -> None:
        result = job.result
        result.version = self.registry.register(
            result.name,
            run.run_id,
            _source(job, run),
            _version_tags(job, promotion),
            promote=promotion.reason if promotion.promote else None,
            state=state,
        )
        result.promotion = promotion.reason
        result.promoted = promotion.promote

    def _create_first(self, job: _Job, run: LoggedRun, promotion: Promotion) -> bool:
        """Create the model with its first version, promoted (the decision taken on no alias);
        False when the model exists already (another runner made it since this run began)."""
        if not promotion.promote:
            return False
        result = job.result
        version = self.registry.register_new(
            result.name,
            run.run_id,
            _source(job, run),
            _version_tags(job, promotion),
            promote=promotion.reason,
        )
        if version is None:
            return False
        result.version, result.promotion, result.promoted = version, promotion.reason, True
        return True

    def _finish_promotion(self, result: ModelResult) -> None:
        """Give the alias to the version an interrupted run registered as promoted, if any."""
        state = self.aliases.get(result.name, NO_ALIAS)
        version = interrupted_promotion(self.versions.get(result.name, []), state)
        if version is None:
            return
        self.registry.move_alias(
            result.name,
            version,
            reason=f"promoted: finishing the promotion an interrupted run began (v{version})",
            state=state,
        )
        result.version, result.promoted = version, True
        result.promotion = f"promoted: finished an interrupted promotion of version {version}"
        result.reason += (
            f"; gave version {version} the {self.registry.alias} alias an interrupted run left"
        )

    def _finish(self, result: ModelResult) -> None:
        with self._lock:
            self.results[result.name] = result
        self.progress.done(result)

    def _give_up(self, error: ServiceError) -> None:
        with self._lock:
            self.lost.append(error)
        if self._pool is not None:
            self._pool.cancel_waiting()


def _source(job: _Job, run: LoggedRun) -> str:
    """A version's source: the servable model under the run's artifacts, or all of them."""
    has_model = (job.out_dir / "model").is_dir()
    return f"{run.artifact_uri}/model" if has_model else run.artifact_uri


def _version_tags(job: _Job, promotion: Promotion) -> dict[str, str]:
    return {
        **job.tags,
        tags.PROMOTION: promotion.reason,
        tags.PROMOTION_STATE: promotion.state.value,
        **{f"{tags.METRIC_PREFIX}{k}": repr(v) for k, v in job.result.metrics.items()},
    }


def _outcome(future: cf.Future[Outcome], name: str) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # the worker process died
        return Outcome(name, None, f"worker crashed: {type(exc).__name__}: {exc}", 0.0)


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
    run = gitinfo.github_run()
    out = {
        tags.GIT_SHA: sha or "unknown",
        tags.DOLT_COMMIT: commit,
        tags.DOLT_BRANCH: branch,
        tags.DOLT_DATABASE: config.dolt.database,
    }
    if run.run_id:
        out[tags.GITHUB_RUN_ID] = run.run_id
    if run.workflow:
        out[tags.GITHUB_WORKFLOW] = run.workflow
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
