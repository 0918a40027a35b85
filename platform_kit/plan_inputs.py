"""The inputs of the plan: each model's current state and its recorded versions, gathered cheaply.

:func:`plan_training` reads the store and the model registry and hands the pure planner
(:func:`platform_kit.plan.make_plan`) what it compares. A model whose tables did not change since
the commit of its latest version keeps that version's fingerprint; when a table did change, the
row-level diff narrows the models to re-fingerprint to those whose query parameters match a
changed row (a family's query selects the rows whose columns equal its ``for_each`` fields, the
way ``WHERE customer_id = %(customer_id)s`` does). Only those models' rows are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from platform_kit.catalog import Model, expand_models
from platform_kit.config import Config
from platform_kit.errors import RefNotFoundError
from platform_kit.fingerprints import fingerprint, params_hash, trainer_code_hash, value_key
from platform_kit.plan import ModelState, Plan, RecordedVersion, make_plan
from platform_kit.rows import read_rows
from platform_kit.store.base import Row, Store
from platform_kit.tracking import tags as T
from platform_kit.tracking.registry import (
    NO_ALIAS,
    ModelRegistry,
    RegistrySnapshot,
    VersionInfo,
    interrupted_promotion,
)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def model_state(
    model: Model,
    root: Path,
    rows: Sequence[Row] | None,
    cache: dict[tuple[str, str], str] | None = None,
) -> ModelState:
    """The planner's view of a model; ``rows`` None: fingerprint unknown."""
    return ModelState(
        name=model.name,
        fingerprint=fingerprint(rows) if rows is not None else None,
        trainer=model.trainer_id,
        code=trainer_code_hash(model.config.trainer, root, cache),
        params=params_hash(model.params),
        rows=len(rows) if rows is not None else None,
    )


def recorded_version(info: VersionInfo) -> RecordedVersion | None:
    """A version as the planner sees it; None when it lacks the kit's tags."""
    t = info.tags
    if T.FINGERPRINT not in t or T.TRAINER not in t or T.PARAMS_HASH not in t:
        return None
    rows = t.get(T.ROWS)
    return RecordedVersion(
        name=info.name,
        version=info.version,
        fingerprint=t[T.FINGERPRINT],
        trainer=t[T.TRAINER],
        code=t.get(T.TRAINER_CODE, ""),
        params=t[T.PARAMS_HASH],
        dolt_commit=t.get(T.DOLT_COMMIT, ""),
        query=t.get(T.QUERY_HASH, ""),
        rows=int(rows) if rows and rows.isdigit() else None,
    )


def as_recorded(found: Mapping[str, Sequence[VersionInfo]]) -> dict[str, list[RecordedVersion]]:
    """The planner's view of versions: those that carry the kit's tags."""
    return {
        name: [r for r in (recorded_version(v) for v in versions) if r is not None]
        for name, versions in found.items()
    }


def recorded_versions(snapshot: RegistrySnapshot) -> dict[str, list[RecordedVersion]]:
    """The planner's view of the versions in ``snapshot``, interrupted promotions marked."""
    found, states = snapshot.versions, snapshot.states
    out = as_recorded(found)
    for name, versions in found.items():
        pending = interrupted_promotion(versions, states.get(name, NO_ALIAS))
        if pending is not None:
            out[name] = [
                replace(r, promotion_pending=True) if r.version == pending else r for r in out[name]
            ]
    return out


def query_tables(sql: str, tables: Iterable[str]) -> set[str]:
    """The known tables a query names (a superset is safe: it only costs a re-fingerprint)."""
    words = {w.lower() for w in _WORD.findall(sql)}
    return {t for t in tables if t.lower() in words}


@dataclass
class _Changes:
    """Changed tables and changed rows between a base commit and the target, read lazily."""

    store: Store
    to_commit: str
    tables: dict[str, set[str]] = field(default_factory=dict)
    rows: dict[tuple[str, str], list[Row]] = field(default_factory=dict)
    index: dict[tuple[str, str, tuple[str, ...]], set[tuple[str, ...]]] = field(
        default_factory=dict
    )

    def changed_tables(self, base: str) -> set[str] | None:
        """None when ``base`` cannot be compared (e.g. a commit that no longer exists)."""
        if base not in self.tables:
            try:
                self.tables[base] = set(self.store.changed_tables(base, self.to_commit))
            except RefNotFoundError:
                return None
        return self.tables[base]

    def changed_rows(self, base: str, table: str) -> list[Row]:
        key = (base, table)
        if key not in self.rows:
            found: list[Row] = []
            for diff in self.store.diff(base, self.to_commit, [table]):
                for change in (*diff.added, *diff.modified, *diff.deleted):
                    found.extend(r for r in (change.old, change.new) if r is not None)
            self.rows[key] = found
        return self.rows[key]

    def touched(self, base: str, table: str, model: Model) -> bool:
        """Whether a changed row of ``table`` may be one of ``model``'s rows."""
        rows = self.changed_rows(base, table)
        if not rows:
            return True  # a schema-only change: cannot narrow
        columns = tuple(k for k in model.used_params if k in rows[0] and k in model.query_params)
        if not columns:
            return True  # the query's parameters are not columns of this table
        key = (base, table, columns)
        if key not in self.index:
            self.index[key] = {tuple(value_key(r.get(c)) for c in columns) for r in rows}
        return tuple(value_key(model.query_params[c]) for c in columns) in self.index[key]


def plan_training(
    config: Config,
    store: Store,
    registry: ModelRegistry,
    *,
    from_ref: str | None = None,
    to_ref: str | None = None,
    force: bool = False,
    snapshot: RegistrySnapshot | None = None,
) -> Plan:
    """Which models need training at ``to_ref`` (default: the main branch), and why.

    Args:
        from_ref: diff from this ref for every model; default: each model's last trained commit.
        force: train every model.
        snapshot: the registry's versions and aliases, read by the caller (default: read here).
    """
    to_commit = store.resolve(to_ref or config.dolt.main_branch)
    from_commit = store.resolve(from_ref) if from_ref else None
    models = expand_models(config, store, to_commit)
    recorded = recorded_versions(snapshot or registry.snapshot())
    known_tables = store.tables(to_commit)
    changes = _Changes(store, to_commit)
    code_cache: dict[tuple[str, str], str] = {}
    states: list[ModelState] = []
    refingerprinted: list[str] = []
    to_read: list[Model] = []
    for model in models:
        versions = recorded.get(model.name, [])
        if not versions or force:
            states.append(model_state(model, config.root, None, code_cache))
            continue
        latest = max(versions, key=lambda v: v.version)
        if _needs_rows(model, latest, from_commit, known_tables, changes):
            to_read.append(model)
        else:
            state = model_state(model, config.root, None, code_cache)
            states.append(replace(state, fingerprint=latest.fingerprint, rows=latest.rows))
    for read in read_rows(store, to_read, to_commit):
        if read.error is not None:
            raise read.error
        states.append(model_state(read.model, config.root, read.rows, code_cache))
        refingerprinted.append(read.model.name)
    return make_plan(
        states,
        recorded,
        to_commit=to_commit,
        from_commit=from_commit,
        force=force,
        refingerprinted=refingerprinted,
    )


def _needs_rows(
    model: Model,
    latest: RecordedVersion,
    from_commit: str | None,
    known_tables: Sequence[str],
    changes: _Changes,
) -> bool:
    """Whether the model's rows may differ from its latest version's (so they must be read)."""
    base = from_commit or latest.dolt_commit
    if not base or latest.query != model.query_hash():
        return True
    if base == changes.to_commit:
        return False
    tables = query_tables(model.config.query, known_tables)
    if not tables:
        return True
    changed_tables = changes.changed_tables(base)
    if changed_tables is None:
        return True
    changed = tables & changed_tables
    return any(changes.touched(base, table, model) for table in sorted(changed))
