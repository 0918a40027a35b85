"""The model side of MLflow: training runs, registered versions, the production alias.

:class:`ModelRegistry` is the one narrow interface the kit uses for models. Every call goes
through :func:`platform_kit.tracking.client.call` (retries, error translation).

MLflow keeps no history of an alias (mlflow/mlflow#2169), so the kit keeps one: the registered
model tag ``platform_kit.alias_history`` holds a JSON list of moves. Replaying it as a stack
(:func:`production_stack`) makes "the previous production version" well defined: a promotion
pushes, a rollback pops back to its target.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from platform_kit.config import Config
from platform_kit.endpoints import mlflow_uri
from platform_kit.errors import TrackingError, UsageError
from platform_kit.plan import RecordedVersion
from platform_kit.tracking.client import call, mlflow_client

# Tags on each run and each model version (ARCHITECTURE.md "Names and formats").
GIT_SHA = "git.sha"
DOLT_COMMIT = "dolt.commit"
DOLT_BRANCH = "dolt.branch"
DOLT_DATABASE = "dolt.database"
FINGERPRINT = "data.fingerprint"
MODEL_NAME = "model.name"
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
# The kit's own tags: what skipping and listing need.
PROJECT = "platform_kit.project"
TRAINER = "trainer.id"
TRAINER_CODE = "trainer.code"
PARAMS_HASH = "params.hash"
QUERY_HASH = "data.query"
ROWS = "data.rows"
PROMOTION = "promotion"  # on versions: promoted, or why not
METRIC_PREFIX = "metric."  # versions carry their metrics so 'model list' needs no run lookups
HISTORY = "platform_kit.alias_history"
HISTORY_LIMIT = 200
_PARAMS_PER_BATCH = 100
_SUPPRESS_URL = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    run_id: str | None
    source: str
    tags: Mapping[str, str]
    created_ms: int = 0

    def recorded(self) -> RecordedVersion | None:
        """The version as the planner sees it; None when it lacks the kit's tags."""
        t = self.tags
        if FINGERPRINT not in t or TRAINER not in t or PARAMS_HASH not in t:
            return None
        rows = t.get(ROWS)
        return RecordedVersion(
            name=self.name,
            version=self.version,
            fingerprint=t[FINGERPRINT],
            trainer=t[TRAINER],
            code=t.get(TRAINER_CODE, ""),
            params=t[PARAMS_HASH],
            dolt_commit=t.get(DOLT_COMMIT, ""),
            query=t.get(QUERY_HASH, ""),
            rows=int(rows) if rows and rows.isdigit() else None,
        )

    @property
    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in self.tags.items():
            if key.startswith(METRIC_PREFIX):
                try:
                    out[key[len(METRIC_PREFIX) :]] = float(value)
                except ValueError:
                    continue
        return out


@dataclass(frozen=True)
class AliasMove:
    """One entry of the alias history."""

    version: int
    action: str  # "promote", "rollback" or "observed" (moved outside the kit)
    at: str
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "action": self.action,
            "at": self.at,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AliasMove:
        return cls(
            version=int(body["version"]),
            action=str(body.get("action", "promote")),
            at=str(body.get("at", "")),
            reason=str(body.get("reason", "")),
        )


def production_stack(history: Sequence[AliasMove]) -> list[int]:
    """Replay the history: promotions push; a rollback pops back to its target.

    The last element is the production version; the one before it is "the previous".
    """
    stack: list[int] = []
    for move in history:
        if move.action == "rollback" and move.version in stack:
            while stack[-1] != move.version:
                stack.pop()
        elif not stack or stack[-1] != move.version:
            stack.append(move.version)
    return stack


def parse_history(text: str | None) -> list[AliasMove]:
    if not text:
        return []
    try:
        body = json.loads(text)
        return [AliasMove.from_json(m) for m in body]
    except (ValueError, TypeError, KeyError):
        return []  # a damaged tag restarts the history rather than blocking promotions


@dataclass(frozen=True)
class AliasState:
    history: list[AliasMove]
    current: int | None  # the version holding the alias now


def as_recorded(found: Mapping[str, Sequence[VersionInfo]]) -> dict[str, list[RecordedVersion]]:
    """The planner's view of versions: those that carry the kit's tags."""
    return {
        name: [r for r in (v.recorded() for v in versions) if r is not None]
        for name, versions in found.items()
    }


def interrupted_promotion(versions: Sequence[VersionInfo], state: AliasState) -> int | None:
    """The latest version, when a run stopped between registering it and giving it the alias.

    Its promotion tag says "promoted", yet the alias is elsewhere and the history never recorded
    the move; or, for a model's first version (whose history rides on creating the model), the
    model has no alias at all.
    """
    if not versions:
        return None
    latest = max(versions, key=lambda v: v.version)
    if not latest.tags.get(PROMOTION, "").startswith("promoted") or state.current == latest.version:
        return None
    moved = {m.version for m in state.history}
    return latest.version if state.current is None or latest.version not in moved else None


@dataclass(frozen=True)
class ModelSummary:
    name: str
    production: VersionInfo | None
    latest: VersionInfo | None
    versions: int


@dataclass
class RunRecord:
    """What one training run logs; the registry turns it into a run and a version."""

    name: str
    tags: dict[str, str]
    params: Mapping[str, Any]
    metrics: Mapping[str, float] = field(default_factory=dict)
    artifacts: Path | None = None  # a directory; its content becomes the run's artifacts
    failed: str | None = None  # why training failed (the run is marked FAILED)


class ModelRegistry:
    """Runs, versions and aliases of one project's models in MLflow."""

    def __init__(
        self, client: MlflowClient, *, project: str, experiment: str, alias: str = "production"
    ) -> None:
        self.client = client
        self.project = project
        self.experiment = experiment
        self.alias = alias
        self._experiment_id: str | None = None
        self._known_models: set[str] = set()
        self._lock = threading.Lock()
        # set_terminated otherwise prints run URLs on stdout (breaking --json) and re-reads the run.
        os.environ.setdefault(_SUPPRESS_URL, "true")

    # -- reading

    def versions(self, names: Collection[str] | None = None) -> dict[str, list[VersionInfo]]:
        """Every version of this project's models (or of ``names``), oldest first."""
        wanted = set(names) if names is not None else None
        out: dict[str, list[VersionInfo]] = {}
        token: str | None = None
        query = f"tags.`{PROJECT}` = '{_quote(self.project)}'"
        while True:
            page = call(
                lambda t=token: self.client.search_model_versions(  # type: ignore[misc]
                    filter_string=query, max_results=10_000, page_token=t
                ),
                "search model versions",
            )
            for mv in page:
                if wanted is not None and mv.name not in wanted:
                    continue
                out.setdefault(mv.name, []).append(_version_info(mv))
            token = page.token
            if not token:
                break
        for found in out.values():
            found.sort(key=lambda v: v.version)
        with self._lock:
            self._known_models.update(out)
        return out

    def recorded(self, names: Collection[str] | None = None) -> dict[str, list[RecordedVersion]]:
        """The planner's view of :meth:`versions`, interrupted promotions marked."""
        found = self.versions(names)
        out = as_recorded(found)
        states = self.alias_states()
        for name, versions in found.items():
            pending = interrupted_promotion(versions, states.get(name, AliasState([], None)))
            if pending is not None:
                out[name] = [
                    replace(r, promotion_pending=True) if r.version == pending else r
                    for r in out[name]
                ]
        return out

    def alias_states(self) -> dict[str, AliasState]:
        """Model name -> its alias state, for every registered model of this project."""
        out: dict[str, AliasState] = {}
        token: str | None = None
        query = f"tags.`{PROJECT}` = '{_quote(self.project)}'"
        while True:
            page = call(
                lambda t=token: self.client.search_registered_models(  # type: ignore[misc]
                    filter_string=query, max_results=1000, page_token=t
                ),
                "search registered models",
            )
            for rm in page:
                current = (rm.aliases or {}).get(self.alias)
                out[rm.name] = AliasState(
                    parse_history((rm.tags or {}).get(HISTORY)),
                    int(current) if current is not None else None,
                )
                with self._lock:
                    self._known_models.add(rm.name)
            token = page.token
            if not token:
                break
        return out

    def version(self, name: str, version: int) -> VersionInfo:
        """Raises UsageError when the model or version does not exist."""
        try:
            mv = call(
                lambda: self.client.get_model_version(name, str(version)),
                f"read version {version} of model {name!r}",
            )
        except TrackingError as exc:
            if _not_found(exc):
                raise UsageError(
                    f"model {name!r} has no version {version}",
                    hint="see 'platform-kit model list'",
                ) from exc
            raise
        return _version_info(mv)

    def production(self, name: str) -> VersionInfo | None:
        try:
            mv = call(
                lambda: self.client.get_model_version_by_alias(name, self.alias),
                f"read the {self.alias} version of model {name!r}",
            )
        except TrackingError as exc:
            if _not_found(exc):
                return None
            raise
        return _version_info(mv)

    def alias_state(self, name: str) -> AliasState:
        """The alias's durable history and the version holding it now (one call)."""
        rm = self._registered_model(name)
        current = (rm.aliases or {}).get(self.alias)
        return AliasState(
            parse_history((rm.tags or {}).get(HISTORY)),
            int(current) if current is not None else None,
        )

    def list_models(self) -> list[ModelSummary]:
        """Each of this project's models with its production and latest versions."""
        states = self.alias_states()
        summaries = []
        for name, found in sorted(self.versions().items()):
            by_number = {v.version: v for v in found}
            state = states.get(name)
            prod = state.current if state else None
            summaries.append(
                ModelSummary(
                    name=name,
                    production=by_number.get(prod) if prod is not None else None,
                    latest=found[-1] if found else None,
                    versions=len(found),
                )
            )
        return summaries

    # -- writing runs and versions

    def experiment_id(self) -> str:
        with self._lock:
            if self._experiment_id is None:
                found = call(
                    lambda: self.client.get_experiment_by_name(self.experiment),
                    f"read experiment {self.experiment!r}",
                )
                if found is None:
                    try:
                        self._experiment_id = call(
                            lambda: self.client.create_experiment(self.experiment),
                            f"create experiment {self.experiment!r}",
                        )
                    except TrackingError:  # created by a parallel job meanwhile
                        again = call(
                            lambda: self.client.get_experiment_by_name(self.experiment),
                            f"read experiment {self.experiment!r}",
                        )
                        if again is None:
                            raise
                        self._experiment_id = again.experiment_id
                else:
                    self._experiment_id = found.experiment_id
            return self._experiment_id

    def log_run(self, record: RunRecord) -> tuple[str, str]:
        """Create a finished run with its params, metrics, tags and artifacts.

        Returns:
            The run id and its artifact URI.
        """
        tags = {**record.tags, PROJECT: self.project}
        if record.failed:
            tags["error"] = record.failed[:4000]
        run = call(
            lambda: self.client.create_run(self.experiment_id(), tags=tags, run_name=record.name),
            f"create a run for model {record.name!r}",
        )
        run_id = run.info.run_id
        params = [Param(k, _param_value(v)) for k, v in sorted(record.params.items())]
        now = int(datetime.now(UTC).timestamp() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in sorted(record.metrics.items())]
        for start in range(0, max(len(params), 1), _PARAMS_PER_BATCH):
            chunk = params[start : start + _PARAMS_PER_BATCH]
            first = start == 0
            if chunk or (first and metrics):
                call(
                    lambda c=chunk, m=(metrics if first else []): self.client.log_batch(  # type: ignore[misc]
                        run_id, metrics=m, params=c
                    ),
                    f"log params and metrics of model {record.name!r}",
                )
        artifact_uri = str(run.info.artifact_uri)
        if record.artifacts is not None and any(record.artifacts.iterdir()):
            directory = str(record.artifacts)
            # The run's own repository: client.log_artifacts would first re-read the run.
            repo = get_artifact_repository(artifact_uri, tracking_uri=self.client.tracking_uri)
            call(
                lambda: repo.log_artifacts(directory),  # type: ignore[no-untyped-call]
                f"store the artifacts of model {record.name!r}",
            )
        status = RunStatus.to_string(RunStatus.FAILED if record.failed else RunStatus.FINISHED)
        call(
            lambda: self.client.set_terminated(run_id, status),
            f"finish the run of model {record.name!r}",
        )
        return run_id, artifact_uri

    def register(
        self,
        name: str,
        run_id: str | None,
        source: str,
        tags: Mapping[str, str],
        *,
        promote: str | None = None,
        state: AliasState | None = None,
    ) -> int:
        """Register a version of ``name`` (creating the model if needed); its artifacts must be
        stored already. Returns the version number.

        Args:
            promote: give the new version the alias, with this reason.
            state: the alias state read before (saves a call when promoting).
        """
        history = None
        if (
            promote is not None
            and state is not None
            and not state.history
            and state.current is None
        ):
            # A model created now gets version 1: its history can ride on the create call.
            now = datetime.now(UTC).isoformat(timespec="seconds")
            history = [AliasMove(1, "promote", now, promote)]
        created = self._ensure_model(name, history)
        all_tags = {**tags, PROJECT: self.project}
        version = self._create_version(name, source, run_id, all_tags)
        if promote is not None:
            if created and history is not None and version == 1:
                self._set_alias(name, version)
            else:
                self.move_alias(name, version, reason=promote, state=state)
        return version

    def _create_version(
        self, name: str, source: str, run_id: str | None, tags: Mapping[str, str]
    ) -> int:
        """Create a version once, even when a retry follows a request the server did handle
        (it went down before answering): a retry first looks for the run's version."""
        attempts = 0

        def create() -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and run_id:
                query = f"name = '{_quote(name)}' AND run_id = '{_quote(run_id)}'"
                found = self.client.search_model_versions(filter_string=query)
                if found:
                    return found[0]
            return self.client.create_model_version(
                name, source, run_id=run_id, tags=dict(tags), await_creation_for=0
            )

        return int(call(create, f"register a version of model {name!r}").version)

    def tag_version(self, name: str, version: int, key: str, value: str) -> None:
        call(
            lambda: self.client.set_model_version_tag(name, str(version), key, value),
            f"tag version {version} of model {name!r}",
        )

    # -- the alias

    def move_alias(
        self,
        name: str,
        version: int,
        *,
        action: str = "promote",
        reason: str = "",
        state: AliasState | None = None,
    ) -> None:
        """Point the alias at ``version`` and append the move to the durable history.

        ``state`` may be passed when the caller read it already (saves a call).
        """
        if state is None:
            state = self.alias_state(name)
        history, current = state.history, state.current
        moves = list(history)
        stack = production_stack(moves)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if current is not None and (not stack or stack[-1] != current):
            moves.append(AliasMove(current, "observed", now, "alias moved outside platform-kit"))
        moves.append(AliasMove(version, action, now, reason))
        self._set_alias(name, version)
        text = json.dumps([m.to_json() for m in moves[-HISTORY_LIMIT:]], separators=(",", ":"))
        call(
            lambda: self.client.set_registered_model_tag(name, HISTORY, text),
            f"record the alias history of model {name!r}",
        )

    def promote(self, name: str, version: int, reason: str = "manual promotion") -> VersionInfo:
        """Give ``version`` the alias. Raises UsageError for an unknown version."""
        info = self.version(name, version)
        self.move_alias(name, version, action="promote", reason=reason)
        return info

    def rollback(self, name: str, to_version: int | None = None) -> tuple[int | None, int]:
        """Move the alias back: to ``to_version``, or to the previous production version.

        Returns:
            (the version that held the alias, the version that holds it now).

        Raises:
            UsageError: no previous production version, or an unknown version.
        """
        state = self.alias_state(name)
        current = state.current
        stack = production_stack(state.history)
        if current is not None and (not stack or stack[-1] != current):
            stack.append(current)
        if to_version is None:
            if len(stack) < 2:
                raise UsageError(
                    f"model {name!r} has no previous {self.alias} version to roll back to",
                    hint="pass --to-version N",
                )
            to_version = stack[-2]
        self.version(name, to_version)  # exists?
        self.move_alias(
            name,
            to_version,
            action="rollback",
            reason=f"rollback from version {current}" if current is not None else "rollback",
            state=state,
        )
        return current, to_version

    # -- helpers

    def _registered_model(self, name: str) -> Any:
        try:
            return call(
                lambda: self.client.get_registered_model(name), f"read registered model {name!r}"
            )
        except TrackingError as exc:
            if _not_found(exc):
                raise UsageError(
                    f"no registered model named {name!r}", hint="see 'platform-kit model list'"
                ) from exc
            raise

    def _set_alias(self, name: str, version: int) -> None:
        call(
            lambda: self.client.set_registered_model_alias(name, self.alias, str(version)),
            f"give version {version} of model {name!r} the alias {self.alias!r}",
        )

    def _ensure_model(self, name: str, history: Sequence[AliasMove] | None = None) -> bool:
        """Create the registered model unless it exists; True when this call created it."""
        with self._lock:
            if name in self._known_models:
                return False
        model_tags = {PROJECT: self.project}
        if history:
            model_tags[HISTORY] = json.dumps([m.to_json() for m in history], separators=(",", ":"))
        created = True
        try:
            call(
                lambda: self.client.create_registered_model(name, tags=model_tags),
                f"create registered model {name!r}",
            )
        except TrackingError as exc:
            if "RESOURCE_ALREADY_EXISTS" not in _code(exc) and "already exists" not in str(exc):
                raise
            created = False
        with self._lock:
            self._known_models.add(name)
        return created


def _version_info(mv: Any) -> VersionInfo:
    return VersionInfo(
        name=str(mv.name),
        version=int(mv.version),
        run_id=mv.run_id or None,
        source=str(mv.source or ""),
        tags=dict(mv.tags or {}),
        created_ms=int(mv.creation_timestamp or 0),
    )


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _code(exc: TrackingError) -> str:
    cause = exc.__cause__
    return str(getattr(cause, "error_code", "")) if isinstance(cause, MlflowException) else ""


def _not_found(exc: TrackingError) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in _code(exc) or "not found" in str(exc).lower()


def registry_for(config: Config) -> ModelRegistry:
    """The registry of a project: its MLflow server, experiment and release alias."""
    return ModelRegistry(
        mlflow_client(mlflow_uri(config)),
        project=config.project,
        experiment=config.mlflow.experiment,
        alias=config.release.alias if config.release else "production",
    )
