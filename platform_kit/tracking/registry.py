"""The model registry: training runs, registered versions and the production alias.

:class:`ModelRegistry` is the one narrow interface the kit uses for models. Its public methods
validate their arguments and hold the kit's rules (the alias history, a first version's
promotion riding on creating the model); a backend implements the ``_hooks`` only:
:class:`~platform_kit.tracking.mlflow_registry.MlflowModelRegistry` for MLflow.

MLflow keeps no history of an alias (mlflow/mlflow#2169), so the kit keeps one: the registered
model tag ``platform_kit.alias_history`` holds a JSON list of moves. Replaying it as a stack
(:func:`production_stack`) makes "the previous production version" well defined: a promotion
pushes, a rollback pops back to its target.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from platform_kit.errors import UsageError
from platform_kit.tracking import tags as T

HISTORY_LIMIT = 200  # moves kept in the alias history tag


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version and its tags."""

    name: str
    version: int
    run_id: str | None
    source: str
    tags: Mapping[str, str]
    created_ms: int = 0

    @property
    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in self.tags.items():
            if key.startswith(T.METRIC_PREFIX):
                try:
                    out[key[len(T.METRIC_PREFIX) :]] = float(value)
                except ValueError:
                    continue
        return out


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model as a backend stores it: its tags and the versions its aliases name."""

    name: str
    tags: Mapping[str, str]
    aliases: Mapping[str, int]
    latest: VersionInfo | None = None  # the newest version, where the search shows it


class AliasAction(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    OBSERVED = "observed"  # the alias was moved outside the kit


@dataclass(frozen=True)
class AliasMove:
    """One entry of the alias history."""

    version: int
    action: AliasAction
    at: str
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "action": self.action.value,
            "at": self.at,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AliasMove:
        """Raises ValueError, TypeError or KeyError for an entry the kit did not write."""
        return cls(
            version=int(body["version"]),
            action=AliasAction(str(body.get("action", AliasAction.PROMOTE))),
            at=str(body.get("at", "")),
            reason=str(body.get("reason", "")),
        )


def production_stack(history: Sequence[AliasMove]) -> list[int]:
    """Replay the history: promotions push; a rollback pops back to its target.

    The last element is the production version; the one before it is "the previous".
    """
    stack: list[int] = []
    for move in history:
        if move.action is AliasAction.ROLLBACK and move.version in stack:
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


def history_json(moves: Sequence[AliasMove]) -> str:
    """The alias history tag's value: the latest :data:`HISTORY_LIMIT` moves."""
    return json.dumps([m.to_json() for m in moves[-HISTORY_LIMIT:]], separators=(",", ":"))


@dataclass(frozen=True)
class AliasState:
    history: list[AliasMove]
    current: int | None  # the version holding the alias now


NO_ALIAS = AliasState([], None)
_ASK_ONE_BY_ONE = 10  # productions(): beyond this many, one snapshot beats a call per model


@dataclass(frozen=True)
class RegistrySnapshot:
    """This project's versions and alias states, read once (two searches, run side by side).

    A run reads the registry in bulk to plan; when it then trains nothing, the release resolves
    its manifest from the same reads instead of searching again (see
    :meth:`ModelRegistry.productions`).
    """

    versions: dict[str, list[VersionInfo]]  # oldest first
    states: dict[str, AliasState]

    def holding(self, name: str) -> VersionInfo | None:
        """The version holding the alias, when these reads show it (else None)."""
        current = self.states.get(name, NO_ALIAS).current
        found = [v for v in self.versions.get(name, []) if v.version == current]
        return found[0] if found else None


def interrupted_promotion(versions: Sequence[VersionInfo], state: AliasState) -> int | None:
    """The latest version, when a run stopped between registering it and giving it the alias.

    Its promotion state is "promoted", yet the alias is elsewhere and the history never recorded
    the move; or, for a model's first version (whose history rides on creating the model), the
    model has no alias at all. Versions registered before the kit wrote ``promotion.state``
    are read from their promotion sentence.
    """
    if not versions:
        return None
    latest = max(versions, key=lambda v: v.version)
    if not promoted(latest) or state.current == latest.version:
        return None
    moved = {m.version for m in state.history}
    return latest.version if state.current is None or latest.version not in moved else None


def promoted(version: VersionInfo) -> bool:
    """Whether training decided to give ``version`` the alias (not whether it holds it)."""
    recorded = version.tags.get(T.PROMOTION_STATE)
    if recorded is not None:
        return recorded == T.PromotionState.PROMOTED
    return version.tags.get(T.PROMOTION, "").startswith("promoted")


@dataclass(frozen=True)
class RunInfo:
    """A training run as recorded: finished (a version may name it) or failed (tag ``error``)."""

    run_id: str
    name: str  # the model
    failed: bool
    tags: Mapping[str, str]
    metrics: Mapping[str, float]
    start_ms: int = 0
    end_ms: int = 0


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
    failed: str | None = None  # why training failed (the run is marked failed)


class LoggedRun(NamedTuple):
    run_id: str
    artifact_uri: str  # where the run's artifacts are: a version's source is under it


class Rollback(NamedTuple):
    previous: int | None  # the version that held the alias
    current: int  # the version that holds it now


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_version_of(name: str, source: str) -> None:
    """A version to register needs a model name and a source (its artifacts' URI)."""
    _check_name(name)
    if not source:
        raise UsageError(f"a version of model {name!r} needs a source (its artifacts' URI)")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise UsageError(f"a model name must be a non-empty string, not {name!r}")


def _check_version(version: int) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UsageError(f"a model version is a whole number from 1, not {version!r}")


class ModelRegistry(ABC):
    """Runs, versions and aliases of one project's models.

    Args:
        project: the project whose models these are (runs, versions and registered models are
            tagged with it; reads see only this project's).
        alias: the alias that marks the production version.
    """

    def __init__(self, *, project: str, alias: str = "production") -> None:
        if not project:
            raise UsageError("a model registry needs a project name")
        if not alias:
            raise UsageError("a model registry needs an alias name")
        self.project = project
        self.alias = alias

    # -- reading

    def versions(self, names: Collection[str] | None = None) -> dict[str, list[VersionInfo]]:
        """Every version of this project's models (or of ``names``), oldest first."""
        wanted = set(names) if names is not None else None
        out: dict[str, list[VersionInfo]] = {}
        for info in self._versions(wanted):
            if wanted is None or info.name in wanted:
                out.setdefault(info.name, []).append(info)
        for found in out.values():
            found.sort(key=lambda v: v.version)
        return out

    def alias_states(self, names: Collection[str] | None = None) -> dict[str, AliasState]:
        """Model name -> its alias state, for every registered model of this project (or of
        ``names``)."""
        wanted = set(names) if names is not None else None
        return {
            m.name: self._state_of(m)
            for m in self._models(wanted)
            if wanted is None or m.name in wanted
        }

    def snapshot(self, names: Collection[str] | None = None) -> RegistrySnapshot:
        """:meth:`versions` and :meth:`alias_states` together; the two searches run side by
        side, since each waits mostly on the server (seconds at 1,000 models)."""
        with ThreadPoolExecutor(1) as pool:
            states = pool.submit(self.alias_states, names)
            versions = self.versions(names)
            return RegistrySnapshot(versions, states.result())

    def alias_state(self, name: str, *, missing_ok: bool = False) -> AliasState:
        """The alias's durable history and the version holding it now.

        Args:
            missing_ok: a model not registered yet has no alias (instead of an error).

        Raises:
            UsageError: no such registered model.
        """
        _check_name(name)
        model = self._model(name)
        if model is None and missing_ok:
            return NO_ALIAS
        if model is None:
            raise UsageError(
                f"no registered model named {name!r}", hint="see 'platform-kit model list'"
            )
        return self._state_of(model)

    def version(self, name: str, version: int) -> VersionInfo:
        """Raises UsageError when the model or version does not exist."""
        _check_name(name)
        _check_version(version)
        info = self._version(name, version)
        if info is None:
            raise UsageError(
                f"model {name!r} has no version {version}", hint="see 'platform-kit model list'"
            )
        return info

    def production(self, name: str, alias: str | None = None) -> VersionInfo | None:
        """The version holding the alias (default: this registry's); None when none does."""
        _check_name(name)
        return self._version_by_alias(name, alias or self.alias)

    def productions(
        self, names: Collection[str], snapshot: RegistrySnapshot | None = None
    ) -> dict[str, VersionInfo | None]:
        """:meth:`production` of many models, not a call per model.

        Without a ``snapshot``, one search of the registered models answers for every model
        whose alias is on its newest version (the usual case: each search shows a model's newest
        version); the others are asked for one by one, or from a :meth:`snapshot` when many.
        A model or version the searches do not show (made outside the kit, without the project
        tag) is asked for on its own, so the answer is the same as production()'s.
        """
        found: dict[str, VersionInfo | None] = {}
        if snapshot is None:
            models = {m.name: m for m in self._models(set(names), expected=len(names))}
            for name in names:
                model = models.get(name)
                current = model.aliases.get(self.alias) if model else None
                if model is not None and current is None:
                    found[name] = None
                elif model is not None and model.latest and model.latest.version == current:
                    found[name] = model.latest
            unsure = [n for n in names if n not in found]
            if len(unsure) <= _ASK_ONE_BY_ONE:
                found.update((n, self.production(n)) for n in unsure)
                return {n: found[n] for n in names}
            snapshot = self.snapshot(unsure)
        out: dict[str, VersionInfo | None] = {}
        for name in names:
            if name in found:
                out[name] = found[name]
                continue
            state = snapshot.states.get(name)
            info = snapshot.holding(name)
            if info is None and (state is None or state.current is not None):
                info = self.production(name)  # unseen: ask, as production() would
            out[name] = info
        return out

    def list_models(self) -> list[ModelSummary]:
        """Each of this project's models with its production and latest versions."""
        snapshot = self.snapshot()
        states = snapshot.states
        summaries = []
        for name, found in sorted(snapshot.versions.items()):
            by_number = {v.version: v for v in found}
            prod = states.get(name, NO_ALIAS).current
            summaries.append(
                ModelSummary(
                    name=name,
                    production=by_number.get(prod) if prod is not None else None,
                    latest=found[-1] if found else None,
                    versions=len(found),
                )
            )
        return summaries

    def runs(self, tags: Mapping[str, str]) -> list[RunInfo]:
        """This project's training runs that carry every tag in ``tags``, newest first (e.g. one
        GitHub Actions run's: :data:`~platform_kit.tracking.tags.GITHUB_RUN_ID`)."""
        found = [
            r for r in self._runs(dict(tags)) if all(r.tags.get(k) == v for k, v in tags.items())
        ]
        return sorted(found, key=lambda r: r.start_ms, reverse=True)

    # -- writing runs and versions

    def log_run(self, record: RunRecord) -> LoggedRun:
        """Create a finished run (failed when ``record.failed``) with its params, metrics, tags
        and artifacts."""
        _check_name(record.name)
        tags = {**record.tags, T.PROJECT: self.project}
        if record.failed:
            tags[T.ERROR] = record.failed[:4000]
        return self._log_run(record, tags)

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
        _check_version_of(name, source)
        history = None
        if (
            promote is not None
            and state is not None
            and not state.history
            and state.current is None
        ):
            # A model created now gets version 1: its history can ride on the create call.
            history = [AliasMove(1, AliasAction.PROMOTE, _now(), promote)]
        created = self._ensure_model(name, self._model_tags(history))
        return self._register(name, run_id, source, tags, promote, state, created, history)

    def register_new(
        self, name: str, run_id: str | None, source: str, tags: Mapping[str, str], *, promote: str
    ) -> int | None:
        """Create the model ``name`` and register its first version with the alias, as
        :meth:`register` does for a model with no alias; None, and nothing written, when the
        model exists already (read its alias state then, and call :meth:`register`).

        It saves reading the state of a model this run has not seen yet: creating it is the test.
        """
        _check_version_of(name, source)
        history = [AliasMove(1, AliasAction.PROMOTE, _now(), promote)]
        if not self._ensure_model(name, self._model_tags(history)):
            return None
        return self._register(name, run_id, source, tags, promote, NO_ALIAS, True, history)

    def _model_tags(self, history: list[AliasMove] | None) -> dict[str, str]:
        model_tags = {T.PROJECT: self.project}
        if history:
            model_tags[T.ALIAS_HISTORY] = history_json(history)
        return model_tags

    def _register(
        self,
        name: str,
        run_id: str | None,
        source: str,
        tags: Mapping[str, str],
        promote: str | None,
        state: AliasState | None,
        created: bool,
        history: list[AliasMove] | None,
    ) -> int:
        version = self._create_version(name, source, run_id, {**tags, T.PROJECT: self.project})
        if promote is not None:
            if created and history is not None and version == 1:
                self._set_alias(name, self.alias, version)
            else:
                self.move_alias(name, version, reason=promote, state=state)
        return version

    # -- the alias

    def move_alias(
        self,
        name: str,
        version: int,
        *,
        action: AliasAction = AliasAction.PROMOTE,
        reason: str = "",
        state: AliasState | None = None,
    ) -> None:
        """Point the alias at ``version`` and append the move to the durable history.

        ``state`` may be passed when the caller read it already (saves a call).
        """
        _check_name(name)
        _check_version(version)
        if state is None:
            state = self.alias_state(name)
        moves = list(state.history)
        stack = production_stack(moves)
        now = _now()
        if state.current is not None and (not stack or stack[-1] != state.current):
            moves.append(
                AliasMove(
                    state.current, AliasAction.OBSERVED, now, "alias moved outside platform-kit"
                )
            )
        moves.append(AliasMove(version, AliasAction(action), now, reason))
        self._set_alias(name, self.alias, version)
        self._set_model_tag(name, T.ALIAS_HISTORY, history_json(moves))

    def promote(self, name: str, version: int, reason: str = "manual promotion") -> VersionInfo:
        """Give ``version`` the alias. Raises UsageError for an unknown version."""
        info = self.version(name, version)
        self.move_alias(name, version, action=AliasAction.PROMOTE, reason=reason)
        return info

    def rollback(self, name: str, to_version: int | None = None) -> Rollback:
        """Move the alias back: to ``to_version``, or to the previous production version.

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
            action=AliasAction.ROLLBACK,
            reason=f"rollback from version {current}" if current is not None else "rollback",
            state=state,
        )
        return Rollback(current, to_version)

    def _state_of(self, model: RegisteredModel) -> AliasState:
        return AliasState(
            parse_history(model.tags.get(T.ALIAS_HISTORY)), model.aliases.get(self.alias)
        )

    # -- what a backend implements

    @abstractmethod
    def _versions(self, names: set[str] | None) -> Iterable[VersionInfo]:
        """This project's versions; those of ``names`` at least (more may come: they are
        filtered out)."""

    @abstractmethod
    def _models(
        self, names: set[str] | None = None, expected: int = 0
    ) -> Iterable[RegisteredModel]:
        """This project's registered models (at least those of ``names``, when given;
        ``expected``: about how many, a hint for paging)."""

    @abstractmethod
    def _model(self, name: str) -> RegisteredModel | None:
        """The registered model ``name``; None when there is none."""

    @abstractmethod
    def _version(self, name: str, version: int) -> VersionInfo | None:
        """One version; None when the model or the version does not exist."""

    @abstractmethod
    def _version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        """The version ``alias`` names; None when the model or the alias does not exist."""

    @abstractmethod
    def _log_run(self, record: RunRecord, tags: Mapping[str, str]) -> LoggedRun:
        """Create a finished run tagged ``tags`` (``record.tags`` and the kit's own)."""

    @abstractmethod
    def _ensure_model(self, name: str, tags: Mapping[str, str]) -> bool:
        """Create the registered model with ``tags`` unless it exists; True when created now."""

    @abstractmethod
    def _create_version(
        self, name: str, source: str, run_id: str | None, tags: Mapping[str, str]
    ) -> int:
        """Register a version once (a retried call must not make two); returns its number."""

    @abstractmethod
    def _set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of model ``name`` at ``version``."""

    def _runs(self, tags: Mapping[str, str]) -> Iterable[RunInfo]:
        """Runs carrying ``tags`` (a backend may return more: :meth:`runs` filters again)."""
        raise NotImplementedError(f"{type(self).__name__} cannot search runs")

    @abstractmethod
    def _set_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on the registered model ``name``."""
