"""An in-memory :class:`~platform_kit.tracking.registry.ModelRegistry`, for fast unit tests of plan
and train.

It implements only the backend hooks; the rules (alias history, promotion riding on a model's
creation, validation) stay in :class:`ModelRegistry`, so they are the same code the MLflow backend
runs. The contract suite (tests/integration/test_models_registry.py) runs every behaviour against
both this registry and a real MLflow server; where they differ on purpose, the difference is
listed in :data:`KNOWN_DIFFERENCES` and shows up there as an expected failure.

A run's artifacts are copied into a directory of their own (under ``root``, default a temporary
directory removed with the registry), whose path is the run's artifact URI: a version's source is
then a plain local path a test can read.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from platform_kit.errors import UsageError
from platform_kit.tracking import tags as T
from platform_kit.tracking.registry import (
    LoggedRun,
    ModelRegistry,
    RegisteredModel,
    RunInfo,
    RunRecord,
    VersionInfo,
)

# Behaviours of the MLflow registry this one does not have, by the name the contract suite uses.
KNOWN_DIFFERENCES: Mapping[str, str] = {
    "shared": "a registry's runs and versions live in that one object (MLflow's are server-wide:"
    " two clients of one server see each other's)",
}


@dataclass
class _Model:
    tags: dict[str, str]
    aliases: dict[str, int] = field(default_factory=dict)
    versions: dict[int, VersionInfo] = field(default_factory=dict)


class MemoryModelRegistry(ModelRegistry):
    """Runs, versions and aliases of one project's models, in this process's memory.

    Args:
        root: where runs' artifacts are copied (default: a new temporary directory).
    """

    known_differences = KNOWN_DIFFERENCES

    def __init__(
        self, *, project: str, alias: str = "production", root: Path | None = None
    ) -> None:
        super().__init__(project=project, alias=alias)
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="platform-kit-registry-")
            root = Path(self._tmp.name)
        self.root = root
        self._models_by_name: dict[str, _Model] = {}
        self._runs_by_id: dict[str, RunInfo] = {}
        self._lock = threading.Lock()
        self._clock = itertools.count(int(time.time() * 1000))  # strictly increasing times

    def _mine(self, tags: Mapping[str, str]) -> bool:
        return tags.get(T.PROJECT) == self.project

    # -- reading

    def _versions(self, names: set[str] | None) -> Iterator[VersionInfo]:
        with self._lock:
            found = [
                v
                for name, model in self._models_by_name.items()
                if names is None or name in names
                for v in model.versions.values()
                if self._mine(v.tags)
            ]
        yield from found

    def _models(
        self, names: set[str] | None = None, expected: int = 0
    ) -> Iterator[RegisteredModel]:
        with self._lock:
            found = [
                _registered(name, m)
                for name, m in self._models_by_name.items()
                if self._mine(m.tags) and (names is None or name in names)
            ]
        yield from found

    def _model(self, name: str) -> RegisteredModel | None:
        with self._lock:
            model = self._models_by_name.get(name)
            return _registered(name, model) if model is not None else None

    def _version(self, name: str, version: int) -> VersionInfo | None:
        with self._lock:
            model = self._models_by_name.get(name)
            return model.versions.get(version) if model is not None else None

    def _version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        with self._lock:
            model = self._models_by_name.get(name)
            if model is None or alias not in model.aliases:
                return None
            return model.versions.get(model.aliases[alias])

    def _runs(self, tags: Mapping[str, str]) -> Iterator[RunInfo]:
        with self._lock:
            found = [
                r
                for r in self._runs_by_id.values()
                if self._mine(r.tags) and all(r.tags.get(k) == v for k, v in tags.items())
            ]
        yield from found

    # -- writing

    def _log_run(self, record: RunRecord, tags: Mapping[str, str]) -> LoggedRun:
        run_id = uuid.uuid4().hex
        artifacts = self.root / run_id / "artifacts"
        artifacts.mkdir(parents=True)
        if record.artifacts is not None and record.artifacts.is_dir():
            shutil.copytree(record.artifacts, artifacts, dirs_exist_ok=True)
        with self._lock:
            start = next(self._clock)
            self._runs_by_id[run_id] = RunInfo(
                run_id=run_id,
                name=tags.get(T.MODEL_NAME) or record.name,
                failed=bool(record.failed),
                tags=dict(tags),
                metrics={k: float(v) for k, v in record.metrics.items()},
                start_ms=start,
                end_ms=start,
            )
        return LoggedRun(run_id, str(artifacts))

    def _ensure_model(self, name: str, tags: Mapping[str, str]) -> bool:
        with self._lock:
            if name in self._models_by_name:
                return False
            self._models_by_name[name] = _Model(dict(tags))
            return True

    def _create_version(
        self, name: str, source: str, run_id: str | None, tags: Mapping[str, str]
    ) -> int:
        with self._lock:
            model = self._existing(name)
            if run_id is not None:  # once per run, as the MLflow backend's retry guarantees
                for info in model.versions.values():
                    if info.run_id == run_id:
                        return info.version
            number = max(model.versions, default=0) + 1
            model.versions[number] = VersionInfo(
                name=name,
                version=number,
                run_id=run_id,
                source=source,
                tags=dict(tags),
                created_ms=next(self._clock),
            )
            return number

    def _set_alias(self, name: str, alias: str, version: int) -> None:
        with self._lock:
            model = self._existing(name)
            if version not in model.versions:
                raise UsageError(f"model {name!r} has no version {version}")
            model.aliases[alias] = version

    def _set_model_tag(self, name: str, key: str, value: str) -> None:
        with self._lock:
            self._existing(name).tags[key] = value

    def _existing(self, name: str) -> _Model:
        model = self._models_by_name.get(name)
        if model is None:
            raise UsageError(
                f"no registered model named {name!r}", hint="see 'platform-kit model list'"
            )
        return model


def _registered(name: str, model: _Model) -> RegisteredModel:
    mine = [
        v for v in model.versions.values() if v.tags.get(T.PROJECT) == model.tags.get(T.PROJECT)
    ]
    return RegisteredModel(
        name=name,
        tags=dict(model.tags),
        aliases=dict(model.aliases),
        latest=max(mine, key=lambda v: v.version) if mine else None,
    )
