"""Reading models' training rows from the store, many family members per query where safe."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from platform_kit.catalog import QUERY_PARAM, Model
from platform_kit.errors import PlatformKitError
from platform_kit.fingerprints import value_key
from platform_kit.store.base import Row, Store

_EQ_PARAM = re.compile(r"(`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*%\(([A-Za-z_][A-Za-z0-9_]*)\)s")
_SELECT = re.compile(r"^\s*select\s+", re.IGNORECASE)
# Adding a key column or widening the filter would change what these return.
_NOT_BATCHABLE = re.compile(
    r"\b(limit|offset|group\s+by|having|union|distinct|count|sum|avg|min|max|over)\b|\bselect\s+\*",
    re.IGNORECASE,
)
BATCH_KEY = "__platform_kit_key"
BATCH_SIZE = 25  # members per family query: bounds the rows held in memory at once


class BatchQuery(NamedTuple):
    """A family query widened to many members: ``template`` has ``{keys}`` for the values."""

    template: str
    column: str  # the column compared with the parameter
    field: str  # the for_each field that is the parameter


@dataclass(frozen=True)
class ModelRows:
    """A model's training rows, or why they could not be read."""

    model: Model
    rows: list[Row] | None
    error: PlatformKitError | None = None


def batch_query(sql: str) -> BatchQuery | None:
    """A family query rewritten to read many members in one scan, or None when it cannot be.

    It applies to a plain ``SELECT ... WHERE <column> = %(field)s ...`` with that one parameter:
    ``<column> = %(field)s`` becomes ``<column> IN ({keys})`` and ``<column>`` is selected first
    as the key that groups the rows back per member.
    """
    matches = _EQ_PARAM.findall(sql)
    if (
        len(matches) != 1
        or len(QUERY_PARAM.findall(sql)) != 1
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
    return BatchQuery(template, column, name)


def read_rows(
    store: Store, models: Sequence[Model], commit: str, batch_size: int = BATCH_SIZE
) -> Iterator[ModelRows]:
    """Each model's training rows at ``commit``, in the order given (a failed read yields its
    error). Members of one family are read ``batch_size`` at a time with one query each when
    :func:`batch_query` can rewrite the family's query: without an index on the key column,
    every per-member query would scan the whole table."""
    pending: list[Model] = []

    def flush() -> Iterator[ModelRows]:
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


def _read_one(store: Store, model: Model, commit: str) -> ModelRows:
    try:
        return ModelRows(model, store.query(model.config.query, model.query_params, commit))
    except PlatformKitError as exc:
        return ModelRows(model, None, exc)


def _read_batch(store: Store, models: list[Model], commit: str) -> Iterator[ModelRows]:
    rewrite = batch_query(models[0].config.query) if len(models) > 1 else None
    if rewrite is None or any(rewrite.field not in m.query_params for m in models):
        for model in models:
            yield _read_one(store, model, commit)
        return
    keys = list(dict.fromkeys(value_key(m.query_params[rewrite.field]) for m in models))
    values = {
        value_key(m.query_params[rewrite.field]): m.query_params[rewrite.field] for m in models
    }
    params = {f"{BATCH_KEY}{i}": values[k] for i, k in enumerate(keys)}
    sql = rewrite.template.replace("{keys}", ", ".join(f"%({name})s" for name in params))
    try:
        found = store.query_groups(sql, params, commit, BATCH_KEY)
    except PlatformKitError as exc:
        for model in models:
            yield ModelRows(model, None, exc)
        return
    grouped: dict[str, list[Row]] = {k: [] for k in keys}
    for value, rows in found:
        grouped.setdefault(value_key(value), []).extend(rows)
    for model in models:
        yield ModelRows(model, grouped.get(value_key(model.query_params[rewrite.field]), []))
