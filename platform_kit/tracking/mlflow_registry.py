"""The model registry on MLflow: runs in the project's experiment, versions in its registry.

Where the server speaks plain REST (:mod:`platform_kit.tracking.rest`), calls go through it;
otherwise through MLflow's client, each call in :func:`platform_kit.tracking.client.call`
(retries, error translation). Both paths write the same records.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from platform_kit.config import Config
from platform_kit.endpoints import mlflow_uri
from platform_kit.errors import ServiceError, TrackingError
from platform_kit.retry import retry
from platform_kit.sql import quote_string
from platform_kit.tracking import tags as T
from platform_kit.tracking.client import call, lazy_client
from platform_kit.tracking.registry import (
    LoggedRun,
    ModelRegistry,
    RegisteredModel,
    RunInfo,
    RunRecord,
    VersionInfo,
)
from platform_kit.tracking.rest import MlflowRest, or_none, rest_api

Read = TypeVar("Read")

if TYPE_CHECKING:  # mlflow takes a second to import: calls through REST need none of it
    from mlflow.tracking import MlflowClient

_PARAMS_PER_BATCH = 100
_NAMES_IN_FILTER = 100  # up to this many names, a search names them (MLflow's `name IN (...)`)
_SUPPRESS_URL = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


class MlflowModelRegistry(ModelRegistry):
    """Runs, versions and aliases of one project's models in MLflow.

    Args:
        client: bound to the tracking server (see :func:`~platform_kit.tracking.client.mlflow_client`).
        experiment: where training runs go (created when missing).
    """

    def __init__(
        self,
        client: MlflowClient,
        *,
        project: str,
        experiment: str,
        alias: str = "production",
        rest: MlflowRest | None = None,
    ) -> None:
        super().__init__(project=project, alias=alias)
        self.client = client
        self.rest = rest  # where set, searches, single reads and train's writes go through it
        self.experiment = experiment
        self._experiment_id: str | None = None
        self._known_models: set[str] = set()
        self._lock = threading.Lock()
        # set_terminated otherwise prints run URLs on stdout (breaking --json) and re-reads the run.
        os.environ.setdefault(_SUPPRESS_URL, "true")

    @classmethod
    def for_project(cls, config: Config, tracking_uri: str) -> MlflowModelRegistry:
        """The registry of a project on the MLflow server at ``tracking_uri``."""
        return cls(
            lazy_client(tracking_uri),
            rest=rest_api(tracking_uri),
            project=config.project,
            experiment=config.mlflow.experiment,
            alias=config.release.alias if config.release else "production",
        )

    # -- reading

    def _project_filter(self, names: set[str] | None = None) -> str:
        """This project's models; only ``names`` when they are few (a search of a shard's models
        then reads those, not every model of a large project)."""
        mine = f"tags.`{T.PROJECT}` = {quote_string(self.project)}"
        if names is None or len(names) > _NAMES_IN_FILTER:
            return mine
        return f"{mine} AND name IN ({', '.join(quote_string(n) for n in sorted(names))})"

    def _versions(self, names: set[str] | None) -> Iterator[VersionInfo]:
        seen: set[str] = set()
        if names is not None and not names:
            return
        for info in self._search_versions(self._project_filter(names)):
            if names is None or info.name in names:
                seen.add(info.name)
                yield info
        with self._lock:
            self._known_models.update(seen)

    def _search_versions(self, query: str) -> Iterator[VersionInfo]:
        if self.rest is not None:
            yield from self.rest.model_versions(query)
            return
        token: str | None = None
        while True:
            page = call(
                lambda t=token: self.client.search_model_versions(  # type: ignore[misc]
                    filter_string=query, max_results=10_000, page_token=t
                ),
                "search model versions",
            )
            yield from (_version_info(mv) for mv in page)
            token = page.token
            if not token:
                return

    def _models(
        self, names: set[str] | None = None, expected: int = 0
    ) -> Iterator[RegisteredModel]:
        if names is not None and not names:
            return
        for model in self._search_models(self._project_filter(names), expected):
            with self._lock:
                self._known_models.add(model.name)
            yield model

    def _search_models(self, query: str, expected: int = 0) -> Iterator[RegisteredModel]:
        if self.rest is not None:
            yield from self.rest.registered_models(query, expected)
            return
        token: str | None = None
        while True:
            page = call(
                lambda t=token: self.client.search_registered_models(  # type: ignore[misc]
                    filter_string=query, max_results=1000, page_token=t
                ),
                "search registered models",
            )
            yield from (_registered_model(rm) for rm in page)
            token = page.token
            if not token:
                return

    def _model(self, name: str) -> RegisteredModel | None:
        if self.rest is not None:
            return self.rest.registered_model(name)
        rm = _read_or_none(
            lambda: self.client.get_registered_model(name), f"read registered model {name!r}"
        )
        return None if rm is None else _registered_model(rm)

    def _version(self, name: str, version: int) -> VersionInfo | None:
        if self.rest is not None:
            return self.rest.model_version(name, version)
        mv = _read_or_none(
            lambda: self.client.get_model_version(name, str(version)),
            f"read version {version} of model {name!r}",
        )
        return None if mv is None else _version_info(mv)

    def _version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        if self.rest is not None:
            return self.rest.version_by_alias(name, alias)
        mv = _read_or_none(
            lambda: self.client.get_model_version_by_alias(name, alias),
            f"read the {alias} version of model {name!r}",
        )
        return None if mv is None else _version_info(mv)

    def _runs(self, tags: Mapping[str, str]) -> Iterator[RunInfo]:
        query = " and ".join(
            [self._project_filter()]
            + [f"tags.`{k}` = {quote_string(v)}" for k, v in sorted(tags.items())]
        )
        token: str | None = None
        while True:
            page = call(
                lambda t=token: self.client.search_runs(  # type: ignore[misc]
                    [self.experiment_id()], filter_string=query, max_results=1000, page_token=t
                ),
                "search runs",
            )
            for run in page:
                run_tags = dict(run.data.tags or {})
                yield RunInfo(
                    run_id=str(run.info.run_id),
                    name=run_tags.get(T.MODEL_NAME) or str(run.info.run_name or ""),
                    failed=run.info.status == "FAILED",
                    tags=run_tags,
                    metrics={str(k): float(v) for k, v in (run.data.metrics or {}).items()},
                    start_ms=int(run.info.start_time or 0),
                    end_ms=int(run.info.end_time or 0),
                )
            token = page.token
            if not token:
                break

    # -- writing

    def experiment_id(self) -> str:
        with self._lock:
            if self._experiment_id is None:
                found = self._find_experiment()
                if found is None:
                    try:
                        found = self._create_experiment()
                    except TrackingError:  # created by a parallel job meanwhile
                        found = self._find_experiment()
                        if found is None:
                            raise
                self._experiment_id = found
            return self._experiment_id

    def _find_experiment(self) -> str | None:
        if self.rest is not None:
            return self.rest.experiment_id(self.experiment)
        found = call(
            lambda: self.client.get_experiment_by_name(self.experiment),
            f"read experiment {self.experiment!r}",
        )
        return None if found is None else str(found.experiment_id)

    def _create_experiment(self) -> str:
        if self.rest is not None:
            return self.rest.create_experiment(self.experiment)
        return call(
            lambda: self.client.create_experiment(self.experiment),
            f"create experiment {self.experiment!r}",
        )

    def _log_run(self, record: RunRecord, tags: Mapping[str, str]) -> LoggedRun:
        name = record.name
        run_id, artifact_uri = self._create_run(name, tags)
        params = {k: _param_value(v) for k, v in sorted(record.params.items())}
        metrics = {k: float(v) for k, v in sorted(record.metrics.items())}
        keys = list(params)
        for start in range(0, max(len(keys), 1), _PARAMS_PER_BATCH):
            chunk = {k: params[k] for k in keys[start : start + _PARAMS_PER_BATCH]}
            first = start == 0
            if chunk or (first and metrics):
                self._log_batch(run_id, chunk, metrics if first else {}, name)
        if record.artifacts is not None and any(record.artifacts.iterdir()):
            self._upload(artifact_uri, record.artifacts, name)
        status = "FAILED" if record.failed else "FINISHED"  # RunStatus names
        what = f"finish the run of model {name!r}"
        if self.rest is not None:
            self.rest.finish_run(run_id, status, what)
        else:
            call(lambda: self.client.set_terminated(run_id, status), what)
        return LoggedRun(run_id, artifact_uri)

    def _create_run(self, name: str, tags: Mapping[str, str]) -> tuple[str, str]:
        what = f"create a run for model {name!r}"
        if self.rest is not None:
            return self.rest.create_run(self.experiment_id(), name, tags, what)
        run = call(
            lambda: self.client.create_run(self.experiment_id(), tags=dict(tags), run_name=name),
            what,
        )
        return str(run.info.run_id), str(run.info.artifact_uri)

    def _log_batch(
        self, run_id: str, params: Mapping[str, str], metrics: Mapping[str, float], name: str
    ) -> None:
        what = f"log params and metrics of model {name!r}"
        if self.rest is not None:
            self.rest.log_batch(run_id, params, metrics, what)
            return
        from mlflow.entities import Metric, Param

        now = int(datetime.now(UTC).timestamp() * 1000)
        call(
            lambda: self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            ),
            what,
        )

    def _upload(self, artifact_uri: str, directory: Path, name: str) -> None:
        what = f"store the artifacts of model {name!r}"
        if self.rest is not None and self.rest.upload_artifacts(artifact_uri, directory, what):
            return
        # The run's own repository: client.log_artifacts would first re-read the run.
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(artifact_uri, tracking_uri=self.client.tracking_uri)
        call(lambda: repo.log_artifacts(str(directory)), what)  # type: ignore[no-untyped-call]

    def _ensure_model(self, name: str, tags: Mapping[str, str]) -> bool:
        with self._lock:
            if name in self._known_models:
                return False
        created = True
        if self.rest is not None:
            created = self.rest.create_registered_model(name, tags)
        else:
            try:
                call(
                    lambda: self.client.create_registered_model(name, tags=dict(tags)),
                    f"create registered model {name!r}",
                )
            except TrackingError as exc:
                if exc.code != "RESOURCE_ALREADY_EXISTS" and "already exists" not in str(exc):
                    raise
                created = False
        with self._lock:
            self._known_models.add(name)
        return created

    def _create_version(
        self, name: str, source: str, run_id: str | None, tags: Mapping[str, str]
    ) -> int:
        """Create a version once, even when a retry follows a request the server did handle
        (it went down before answering): a retry first looks for the run's version."""
        what = f"register a version of model {name!r}"
        attempts = 0

        def create() -> int:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and run_id:
                query = f"name = {quote_string(name)} AND run_id = {quote_string(run_id)}"
                found = self._search_versions(query)
                first = next(iter(found), None)
                if first is not None:
                    return first.version
            if self.rest is not None:
                return self.rest.create_model_version(name, source, run_id, tags, what)
            created = self.client.create_model_version(
                name, source, run_id=run_id, tags=dict(tags), await_creation_for=0
            )
            return int(created.version)

        if self.rest is not None:  # its requests are not retried: retry here
            return retry(create, transient=lambda e: isinstance(e, ServiceError), what=what)
        return call(create, what)

    def _set_alias(self, name: str, alias: str, version: int) -> None:
        what = f"give version {version} of model {name!r} the alias {alias!r}"
        if self.rest is not None:
            self.rest.set_alias(name, alias, version, what)
            return
        writer = self._writer()
        call(lambda: writer.set_registered_model_alias(name, alias, str(version)), what)

    def _set_model_tag(self, name: str, key: str, value: str) -> None:
        tag = "the alias history" if key == T.ALIAS_HISTORY else f"tag {key!r}"
        what = f"record {tag} of model {name!r}"
        if self.rest is not None:
            self.rest.set_model_tag(name, key, value, what)
            return
        writer = self._writer()
        call(lambda: writer.set_registered_model_tag(name, key, value), what)

    def _writer(self) -> Any:
        """Where alias and model-tag writes go: MlflowClient's own methods first read the whole
        registered model (to refuse prompts, which the kit never names), a request per write;
        its registry client sends the write alone."""
        registry_client = getattr(self.client, "_get_registry_client", None)
        return registry_client() if registry_client is not None else self.client


def _version_info(mv: Any) -> VersionInfo:
    return VersionInfo(
        name=str(mv.name),
        version=int(mv.version),
        run_id=mv.run_id or None,
        source=str(mv.source or ""),
        tags=dict(mv.tags or {}),
        created_ms=int(mv.creation_timestamp or 0),
    )


def _registered_model(rm: Any) -> RegisteredModel:
    latest = [_version_info(mv) for mv in rm.latest_versions or []]  # the newest per stage
    return RegisteredModel(
        name=str(rm.name),
        tags=dict(rm.tags or {}),
        aliases={str(k): int(v) for k, v in (rm.aliases or {}).items()},
        latest=max(latest, key=lambda v: v.version) if latest else None,
    )


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]


def _read_or_none(read: Callable[[], Read], what: str) -> Read | None:
    """A read through MLflow's client (:func:`call`), None where there is no such thing."""
    return or_none(lambda: call(read, what))


def registry_for(config: Config) -> MlflowModelRegistry:
    """The registry of a project: its MLflow server, experiment and release alias."""
    return MlflowModelRegistry.for_project(config, mlflow_uri(config))
