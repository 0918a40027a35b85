"""Concrete models from platform.yaml, their data fingerprints, and the plan built from them.

A ``models:`` entry is one model, or a family expanded by running its ``for_each`` query over
Dolt at a commit: one model per row, named by filling the name template from the row, whose
training query takes the row as parameters.

:func:`plan_training` feeds the pure planner (:func:`platform_kit.plan.make_plan`) cheaply: a
model whose tables did not change since the commit of its latest version keeps that version's
fingerprint; when a table did change, the row-level diff narrows the models to re-fingerprint to
those whose query parameters match a changed row (a family's query selects the rows whose columns
equal its ``for_each`` fields, the way ``WHERE customer_id = %(customer_id)s`` does). Only those
models' rows are read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import re
import shlex
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from platform_kit.config import Config, ModelConfig, Trainer
from platform_kit.errors import (
    ConfigError,
    PlatformKitError,
    RefNotFoundError,
    StoreError,
    UsageError,
)
from platform_kit.plan import (
    ModelState,
    Plan,
    RecordedVersion,
    canonical_json,
    make_plan,
    params_hash,
)
from platform_kit.store.base import Row, Store

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAM = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s")


@dataclass(frozen=True)
class Model:
    """One concrete model: a single ``models:`` entry, or one row of a family."""

    name: str
    config: ModelConfig
    query_params: Mapping[str, Any] = field(default_factory=dict)  # the for_each row

    @property
    def trainer_id(self) -> str:
        return trainer_id(self.config.trainer)

    @property
    def params(self) -> Mapping[str, Any]:
        return self.config.params

    @property
    def used_params(self) -> tuple[str, ...]:
        """The for_each fields the query reads (``%(field)s``)."""
        return tuple(dict.fromkeys(_PARAM.findall(self.config.query)))

    def read_rows(self, store: Store, commit: str) -> list[Row]:
        """The model's training rows at ``commit``."""
        return store.query(self.config.query, self.query_params, commit)

    def query_hash(self) -> str:
        """What selects the rows: the query text and the parameter values it uses."""
        used = {k: _plain(self.query_params[k]) for k in self.used_params if k in self.query_params}
        body = canonical_json({"query": self.config.query, "params": used})
        return hashlib.sha256(body.encode()).hexdigest()


class RecordedSource(Protocol):
    """What planning needs from the registry (see platform_kit.tracking.models.ModelRegistry)."""

    def recorded(
        self, names: Collection[str] | None = None
    ) -> dict[str, list[RecordedVersion]]: ...


# ---------------------------------------------------------------------------- expanding


def expand_models(config: Config, store: Store, commit: str) -> list[Model]:
    """Every concrete model at ``commit``, in config order (families expand per row).

    Raises:
        ConfigError: a family's query fails, or its rows lack a name field or give a bad or
            duplicate model name.
    """
    out: list[Model] = []
    seen: dict[str, str] = {}
    for entry in config.models:
        if entry.for_each is None:
            models = [Model(entry.name, entry)]
        else:
            try:
                rows = store.query(entry.for_each, None, commit)
            except RefNotFoundError:
                raise
            except StoreError as exc:
                raise ConfigError(
                    f"{config.path}: model family {entry.family!r}: its for_each query failed at "
                    f"Dolt commit {commit[:12]}: {exc.message}",
                    hint="fix 'for_each' in platform.yaml; nothing was trained",
                ) from exc
            models = [_family_member(config, entry, row) for row in rows]
        for model in models:
            if not _MODEL_NAME.match(model.name):
                raise ConfigError(
                    f"{config.path}: model name {model.name!r} (from {entry.name!r}) is not valid: "
                    "use letters, digits, '_', '.', '-'"
                )
            if model.name in seen:
                raise ConfigError(
                    f"{config.path}: two models are named {model.name!r} "
                    f"(from {seen[model.name]!r} and {entry.name!r}); make the names unique"
                )
            seen[model.name] = entry.name
            out.append(model)
    return out


def _family_member(config: Config, entry: ModelConfig, row: Row) -> Model:
    missing = [f for f in entry.template_fields if f not in row]
    if missing:
        raise ConfigError(
            f"{config.path}: model family {entry.family!r}: its for_each query returns no "
            f"column {', '.join(missing)} for the name {entry.name!r} (columns: {', '.join(row)})"
        )
    name = entry.name.format(**{k: _name_part(v) for k, v in row.items()})
    return Model(name, entry, dict(row))


def _name_part(value: Any) -> str:
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------- reading rows

_EQ_PARAM = re.compile(r"(`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*%\(([A-Za-z_][A-Za-z0-9_]*)\)s")
_SELECT = re.compile(r"^\s*select\s+", re.IGNORECASE)
# Adding a key column or widening the filter would change what these return.
_NOT_BATCHABLE = re.compile(
    r"\b(limit|offset|group\s+by|having|union|distinct|count|sum|avg|min|max|over)\b|\bselect\s+\*",
    re.IGNORECASE,
)
BATCH_KEY = "__platform_kit_key"
BATCH_SIZE = 25  # members per family query: bounds the rows held in memory at once


def batch_query(sql: str) -> tuple[str, str, str] | None:
    """A family query rewritten to read many members in one scan, or None when it cannot be.

    It applies to a plain ``SELECT ... WHERE <column> = %(field)s ...`` with that one parameter:
    ``<column> = %(field)s`` becomes ``<column> IN ({keys})`` and ``<column>`` is selected first
    as the key that groups the rows back per member. Returns (template, column, field); the
    template has ``{keys}`` where the parameter list goes.
    """
    matches = _EQ_PARAM.findall(sql)
    if (
        len(matches) != 1
        or len(_PARAM.findall(sql)) != 1
        or not _SELECT.match(sql)
        or _NOT_BATCHABLE.search(sql)
        or "{" in sql
        or "}" in sql
    ):
        return None
    column, name = matches[0]
    widened = _EQ_PARAM.sub(lambda _: f"{column} IN ({{keys}})", sql, count=1)
    head = _SELECT.match(widened)
    assert head is not None
    template = f"{widened[: head.end()]}{column} AS {BATCH_KEY}, {widened[head.end() :]}"
    return template, column, name


def read_rows(
    store: Store, models: Sequence[Model], commit: str, batch_size: int = BATCH_SIZE
) -> Iterator[tuple[Model, list[Row] | PlatformKitError]]:
    """Each model's training rows at ``commit``, in the order given (a failed read yields its
    error). Members of one family are read ``batch_size`` at a time with one query each when
    :func:`batch_query` can rewrite the family's query: without an index on the key column,
    every per-member query would scan the whole table."""
    pending: list[Model] = []

    def flush() -> Iterator[tuple[Model, list[Row] | PlatformKitError]]:
        if pending:
            yield from _read_batch(store, list(pending), commit)
            pending.clear()

    # The first batch is small so that the first model reaches a worker quickly.
    size = min(2, batch_size)
    for model in models:
        if pending and (pending[0].config is not model.config or len(pending) >= size):
            yield from flush()
            size = batch_size
        pending.append(model)
    yield from flush()


def _read_batch(
    store: Store, models: list[Model], commit: str
) -> Iterator[tuple[Model, list[Row] | PlatformKitError]]:
    rewrite = batch_query(models[0].config.query) if len(models) > 1 else None
    if rewrite is None or any(rewrite[2] not in m.query_params for m in models):
        for model in models:
            try:
                yield model, model.read_rows(store, commit)
            except PlatformKitError as exc:
                yield model, exc
        return
    template, _, field_name = rewrite
    keys = list(dict.fromkeys(_norm(m.query_params[field_name]) for m in models))
    values = {_norm(m.query_params[field_name]): m.query_params[field_name] for m in models}
    params = {f"{BATCH_KEY}{i}": values[k] for i, k in enumerate(keys)}
    sql = template.replace("{keys}", ", ".join(f"%({name})s" for name in params))
    try:
        found = store.query(sql, params, commit)
    except PlatformKitError as exc:
        for model in models:
            yield model, exc
        return
    grouped: dict[str, list[Row]] = {k: [] for k in keys}
    for row in found:
        key = _norm(row.pop(BATCH_KEY))
        grouped.setdefault(key, []).append(row)
    for model in models:
        yield model, grouped.get(_norm(model.query_params[field_name]), [])


def select_models(models: Sequence[Model], names: Sequence[str]) -> list[Model]:
    """The models named, in the order given.

    Raises:
        UsageError: a name matches no model.
    """
    by_name = {m.name: m for m in models}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        sample = ", ".join(sorted(by_name)[:5]) + (" ..." if len(by_name) > 5 else "")
        raise UsageError(
            f"no model named {', '.join(repr(n) for n in unknown)} at this commit "
            f"(models: {sample or 'none'})",
            hint="see 'platform-kit plan'",
        )
    return [by_name[n] for n in dict.fromkeys(names)]


# ---------------------------------------------------------------------------- hashing


def fingerprint(rows: Iterable[Mapping[str, Any]]) -> str:
    """A content hash of rows, independent of their order (duplicates count).

    Each row is hashed on its sorted (column, value) pairs, values made plain by :func:`_plain`;
    ``repr`` of str/int/float/bool/None is stable across runs and cheaper than JSON.
    """
    digests = sorted(
        hashlib.sha256(repr(sorted((str(k), _plain(v)) for k, v in r.items())).encode()).digest()
        for r in rows
    )
    h = hashlib.sha256(f"rows:{len(digests)}\n".encode())
    for digest in digests:
        h.update(digest)
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """A JSON value that stands for ``value`` the same way every time it is read."""
    if isinstance(value, Decimal):
        return f"decimal:{value.normalize()}"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return "hex:" + bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, set | frozenset):
        return sorted(str(v) for v in value)
    return value


def trainer_id(trainer: Trainer) -> str:
    return trainer if isinstance(trainer, str) else f"command:{trainer.command}"


def trainer_code_hash(
    trainer: Trainer, root: Path, cache: dict[tuple[str, str], str] | None = None
) -> str:
    """A hash of the trainer's code.

    A Python trainer hashes every ``.py`` file of its top-level package (a trainer imports its
    siblings, e.g. ``training.bow``); a command hashes its text and each file it names that
    exists under ``root``. ``cache`` saves re-reading the files for many models of one run.
    """
    key = (trainer_id(trainer), str(root.resolve()))
    if cache is not None and key in cache:
        return cache[key]
    value = _code_hash(*key)
    if cache is not None:
        cache[key] = value
    return value


def _code_hash(tid: str, root: str) -> str:
    h = hashlib.sha256(tid.encode())
    for path in _code_files(tid, Path(root)):
        h.update(f"\n{path.name}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _code_files(tid: str, root: Path) -> list[Path]:
    if tid.startswith("command:"):
        files = []
        for token in shlex.split(tid.removeprefix("command:")):
            candidate = root / token
            if "{" not in token and candidate.is_file():
                files.append(candidate)
        return files
    module = tid.split(":", 1)[0]
    top = module.split(".", 1)[0]
    local = root / top
    if local.is_dir() or (root / f"{top}.py").is_file():
        base: Path | None = local if local.is_dir() else root / f"{top}.py"
    else:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        base = None
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            origin = Path(spec.origin)
            base = origin.parent if origin.name == "__init__.py" else origin
    if base is None:
        return []
    if base.is_file():
        return [base]
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


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
        params=params_hash_of(model),
        rows=len(rows) if rows is not None else None,
    )


def params_hash_of(model: Model) -> str:
    return params_hash(model.params)


def query_tables(sql: str, tables: Iterable[str]) -> set[str]:
    """The known tables a query names (a superset is safe: it only costs a re-fingerprint)."""
    words = {w.lower() for w in _WORD.findall(sql)}
    return {t for t in tables if t.lower() in words}


# ---------------------------------------------------------------------------- planning


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
            self.index[key] = {tuple(_norm(r.get(c)) for c in columns) for r in rows}
        return tuple(_norm(model.query_params[c]) for c in columns) in self.index[key]


def _norm(value: Any) -> str:
    return str(_plain(value))


def plan_training(
    config: Config,
    store: Store,
    registry: RecordedSource,
    *,
    from_ref: str | None = None,
    to_ref: str | None = None,
    force: bool = False,
) -> Plan:
    """Which models need training at ``to_ref`` (default: the main branch), and why.

    Args:
        from_ref: diff from this ref for every model; default: each model's last trained commit.
        force: train every model.
    """
    to_commit = store.resolve(to_ref or config.dolt.main_branch)
    from_commit = store.resolve(from_ref) if from_ref else None
    models = expand_models(config, store, to_commit)
    recorded = registry.recorded([m.name for m in models])
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
            states.append(
                ModelState(
                    name=state.name,
                    fingerprint=latest.fingerprint,
                    trainer=state.trainer,
                    code=state.code,
                    params=state.params,
                    rows=latest.rows,
                )
            )
    for model, rows in read_rows(store, to_read, to_commit):
        if isinstance(rows, PlatformKitError):
            raise rows
        states.append(model_state(model, config.root, rows, code_cache))
        refingerprinted.append(model.name)
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
