"""Sync sheets into Dolt: read, validate, diff against the branch head, commit once per sheet.

Every sheet is read and validated before anything is written, so bad input leaves every branch
as it was. A sheet whose rows did not change makes no commit. The commit message is the format
other tools read (docs/architecture.md):

    sync <sheet>: +<added> ~<changed> -<deleted> rows (source <id>@<revision>)
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, partial, wraps
from operator import methodcaller
from typing import Any, ParamSpec, TypeVar

from platform_kit.config import Config, FileSource, SheetConfig
from platform_kit.errors import StoreError, ValidationError
from platform_kit.sheets import RawSheet, SheetReader, reader_for
from platform_kit.sheets.validate import TypedSheet, validate
from platform_kit.store.base import (
    SYNC_TAGS,
    ChangeSet,
    Key,
    Row,
    Store,
    TableSchema,
    check_identifier,
)

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
SAMPLE = 20  # changed rows kept per kind for --dry-run and review output


@dataclass
class SheetSync:
    sheet: str
    table: str
    branch: str
    source: str
    revision: str
    added: int = 0
    changed: int = 0
    deleted: int = 0
    new_columns: list[str] = field(default_factory=list)
    commit: str | None = None  # None: nothing to commit, or a dry run
    message: str = ""
    samples: dict[str, list[Row]] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.deleted or self.new_columns)

    def to_json(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "table": self.table,
            "branch": self.branch,
            "source": self.source,
            "revision": self.revision,
            "added": self.added,
            "changed": self.changed,
            "deleted": self.deleted,
            "new_columns": self.new_columns,
            "commit": self.commit,
            "message": self.message,
            "samples": {k: [_jsonable(r) for r in v] for k, v in self.samples.items()},
        }


@dataclass
class SyncReport:
    sheets: list[SheetSync]
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "sheets": [s.to_json() for s in self.sheets]}


def commit_message(
    sheet: str, added: int, changed: int, deleted: int, source: str, revision: str
) -> str:
    return f"sync {sheet}: +{added} ~{changed} -{deleted} rows (source {source}@{revision})"


def _few_gc_passes(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the cyclic garbage collector paused.

    A sync holds hundreds of thousands of long-lived rows: the collector's full passes over
    them free nothing and cost about a third of validating 100k rows. It resumes (as it was)
    when ``fn`` returns; whatever cycles came meanwhile are collected then.
    """

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return run


@_few_gc_passes
def sync(
    config: Config,
    store: Store,
    *,
    sheets: Sequence[str] | None = None,
    branch: str | None = None,
    dry_run: bool = False,
    reader: Callable[[SheetConfig], SheetReader] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> SyncReport:
    """Sync the named sheets (default: all) to ``branch`` (default: ``sheets/<sheet>``).

    Raises:
        ValidationError / SourceError: a sheet is unreadable or invalid; nothing was written.
        StoreError: Dolt refused the write; that sheet's branch is unchanged.
    """
    chosen = [config.sheet(name) for name in sheets] if sheets else list(config.sheets)
    main = config.dolt.main_branch
    branches = store.branches()
    make_reader = reader or (lambda s: reader_for(s, config.root))
    results: list[SheetSync] = []
    # Read and validate everything first: one bad sheet writes nothing at all.
    prepared: list[_Prepared] = []
    for sheet in chosen:
        target = branch or f"sheets/{sheet.name}"
        sheet_reader = make_reader(sheet)
        key = source_key(sheet, sheet_reader)
        # What the sheet is compared with: its branch, or main, where a new branch starts (a
        # fresh clone of a remote has no data branches; the tags come with main's history).
        base = branches.get(target) or branches.get(main)
        name = sync_tag(target, sheet.name)
        told = store.tag(name, first_line=True) if base else None  # the key: the note's line 1
        holds = told is not None and base is not None and _same_table(store, told[0], base, sheet)
        if key and told and holds and told[1] == key:
            # Dolt itself records that this source, under this config, gave the table as it is.
            results.append(SheetSync(sheet.name, sheet.table, target, sheet.source.id, "unchanged"))
            progress(f"{sheet.name}: unchanged since the last sync")
            continue
        tag = store.tag(name) if told and holds else None  # the row digests too
        record = _Record.parse(tag[1]) if tag and told and tag[0] == told[0] else None
        progress(f"reading {sheet.name}")
        raw = sheet_reader.read(sheet)
        item = _Prepared(sheet, raw, TypedSheet({}, {}, []), key, None, None, None, base, tag)
        if record is not None:  # digests to compare with: only the rows not known are parsed
            style, item.digests = _row_digests(raw)
            item.seed = _row_seed(sheet, raw, style)
            item.known = record.rows if record.seed == item.seed else None
        unchanged = item.unchanged()
        item.typed = validate(sheet, raw, unchanged)
        prepared.append(item)

    # Digests taken only for the tag are taken while Dolt writes (the write waits on it).
    with ThreadPoolExecutor(max_workers=1) as pool:
        for item in prepared:
            sheet, raw, typed = item.sheet, item.raw, item.typed
            target = branch or f"sheets/{sheet.name}"
            head_ref = target if target in branches else main
            head = store.resolve(head_ref)
            if typed.kept and head != item.based_on:  # the branch moved meanwhile: compare all
                typed = validate(sheet, raw)
            later = None
            if item.digests is None and not dry_run:
                later = pool.submit(_row_digests, raw)
            change, result = plan_sheet(
                sheet, raw, typed, store, head, target, vanished=item.vanished()
            )
            if result.has_changes and not dry_run:
                if target not in branches:
                    store.create_branch(target, head)
                    branches[target] = head
                result.commit = store.commit_changes(
                    target, [change], result.message, expected_head=head
                )
                progress(f"committed {sheet.name} to {target}")
            if later is not None:
                style, item.digests = later.result()
                item.seed = _row_seed(sheet, raw, style)
            if not dry_run and target in branches and item.digests is not None:
                note = _Record.of(item.key or "", item.seed or "", item.digests).note()
                name = sync_tag(target, sheet.name)
                _remember(store, name, result.commit or head, note, item.tag)
            results.append(result)
    return SyncReport(results, dry_run=dry_run)


ROW_DIGEST_BYTES = 8  # a changed row mistaken for a known one: about 1 in 10^14 at 100k rows


class _Record:
    """What the sync tag's note says about its commit: the source key and each row's digest.

    The note has three lines: the key, the seed, and the row digests in sheet order (base64);
    the digests are decoded only when a sheet is read (a skipped sheet needs the key alone).
    """

    def __init__(self, key: str, seed: str, packed: str) -> None:
        self.key, self.seed, self._packed = key, seed, packed

    @classmethod
    def of(cls, key: str, seed: str, digests: bytes) -> _Record:
        return cls(key, seed, base64.b64encode(digests).decode())

    def note(self) -> str:
        return f"{self.key}\n{self.seed}\n{self._packed}"

    @classmethod
    def parse(cls, note: str) -> _Record | None:
        parts = note.split("\n", 2)
        return cls(*parts) if len(parts) == 3 else None

    @cached_property
    def rows(self) -> frozenset[int] | None:
        """The row digests (as numbers, see :func:`_numbers`); None when the note is damaged."""
        try:
            packed = base64.b64decode(self._packed, validate=True)
        except ValueError:
            return None
        if len(packed) % ROW_DIGEST_BYTES:
            return None
        return frozenset(_numbers(packed))


@dataclass
class _Prepared:
    sheet: SheetConfig
    raw: RawSheet
    typed: TypedSheet
    key: str | None
    seed: str | None  # with the digests
    digests: bytes | None  # ROW_DIGEST_BYTES per row, in sheet order; None: not taken yet
    known: frozenset[int] | None
    based_on: str | None  # the head the known digests describe
    tag: tuple[str, str] | None  # the sync tag as read

    @cached_property
    def numbers(self) -> list[int]:
        return _numbers(self.digests or b"")

    def unchanged(self) -> list[bool] | None:
        """Whether each row is byte for byte a known one; None: no known rows."""
        return list(map(self.known.__contains__, self.numbers)) if self.known else None

    def vanished(self) -> int | None:
        """How many of the known rows no longer appear byte for byte (updated or deleted)."""
        if not self.known:
            return None
        return len(self.known) - len(self.known.intersection(self.numbers))


def _numbers(digests: bytes) -> list[int]:
    """Row digests as numbers: sets of them are built and searched faster than of bytes."""
    return memoryview(digests).cast("Q").tolist()


def _row_seed(sheet: SheetConfig, raw: RawSheet, style: str) -> str:
    """Row digests hold only under the header, config and digest style they were taken with."""
    settings = (*_rules(sheet), raw.header, style)
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:32]


def _rules(sheet: SheetConfig) -> tuple[object, ...]:
    """What of a sheet's config decides how its rows are read and checked."""
    return (
        sheet.columns,
        sheet.renames,
        sheet.primary_key,
        sheet.required,
        sheet.allow_drops,
        sheet.table,
    )


_DIGEST = partial(hashlib.blake2b, digest_size=ROW_DIGEST_BYTES)


def _row_digests(raw: RawSheet) -> tuple[str, bytes]:
    """(style, one short digest per row): a change detector, not a seal.

    Rows read as whole lines (a CSV without quotes) are hashed as those lines. Other text rows
    (quoted CSV, gspread) are hashed as their cells joined by NUL: unambiguous while no cell
    holds a NUL, which the count checks. The rest (typed XLSX cells, a NUL) are hashed one by
    one from their cell count and repr. Each is a C loop over the rows but the last.
    """
    rows = raw.rows
    if raw.lines is not None and len(raw.lines) == len(rows):
        return "line", _digests(raw.lines)
    try:
        texts = list(map("\0".join, rows))
    except TypeError:  # typed cells (XLSX)
        texts = None
    if texts is not None:
        separators = sum(map(len, rows)) - len(rows) + rows.count([])
        if "".join(texts).count("\0") == separators:
            return "text", _digests(texts)
    return "repr", b"".join(_DIGEST(f"{len(cells)}\0{cells!r}".encode()).digest() for cells in rows)


def _digests(texts: list[str]) -> bytes:
    return b"".join(map(methodcaller("digest"), map(_DIGEST, map(str.encode, texts))))


def _same_table(store: Store, commit: str, head: str, sheet: SheetConfig) -> bool:
    """Whether the sheet's table is the same at ``head`` as at ``commit`` (what a tag names)."""
    if commit == head:
        return True
    try:
        return sheet.table not in store.changed_tables(commit, head)
    except StoreError:
        return False


def sync_tag(branch: str, sheet: str) -> str:
    """The Dolt tag that records which source content ``branch``'s head holds for ``sheet``.

    It points at the head the last sync of the sheet left, with the source key as its message:
    a resync on any machine (no local state needed) that finds the sheet's table as it was
    there, and the same key, skips. Pushes carry these tags, clones and fetches bring them.
    """
    return f"{SYNC_TAGS}{branch}/{sheet}"


def _remember(store: Store, tag: str, head: str, note: str, before: tuple[str, str] | None) -> None:
    if before == (head, note):  # as read before this sync (a concurrent one moves the head)
        return
    try:
        store.set_tag(tag, head, note)
    except StoreError as exc:  # only a shortcut for next time: the sync itself is done
        log.warning("could not record %s (the next sync reads the sheet again): %s", tag, exc)


def source_key(sheet: SheetConfig, reader: SheetReader) -> str | None:
    """What the sheet's source holds, under the sheet's config, as one hash; None: unknown.

    Files: the digest of their bytes. Google Sheets: the spreadsheet's ``modifiedTime``
    (one Drive metadata call). The config part makes a changed column, rename or rule re-read.
    """
    source = sheet.source
    # A file by name, not path: a fresh checkout elsewhere holds the same bytes.
    where = (source.file.name, source.worksheet) if isinstance(source, FileSource) else source
    settings = (*_rules(sheet), where)
    digest = hashlib.sha256(repr(settings).encode())
    if isinstance(source, FileSource):
        if not source.file.is_file():
            return None  # the read says what is missing
        with source.file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        revision = reader.revision(sheet)
        if not revision:
            return None
        digest.update(b"\0revision\0" + revision.encode())
    return digest.hexdigest()


def plan_sheet(
    sheet: SheetConfig,
    raw: RawSheet,
    typed: TypedSheet,
    store: Store,
    head: str,
    branch: str,
    *,
    vanished: int | None = None,
) -> tuple[ChangeSet, SheetSync]:
    """The row-level change from the table at ``head`` to the sheet, and its summary.

    With ``typed.kept`` (rows known to be in the table as they are), only the other rows are
    compared, read from Dolt by key; ``vanished`` (known rows that no longer appear) tells
    whether some row may have been deleted, which alone needs every key of the table.
    """
    where = f"sheet {sheet.name!r}"
    existing = store.schema(sheet.table, head)
    columns = dict(typed.columns)
    add_columns: dict[str, str] = {}
    if existing is not None:
        problems = []
        for column, kind in columns.items():
            old = existing.columns.get(column)
            if old is None:
                add_columns[column] = kind
            elif old != kind:
                problems.append(
                    f"{where}: column {column!r} is {old} in Dolt table {sheet.table!r} but {kind} "
                    "in platform.yaml; keep the type, or migrate the table by hand "
                    f"(ALTER TABLE {sheet.table} MODIFY ...) and sync again"
                )
        dropped = [c for c in existing.columns if c not in columns]
        if dropped and not sheet.allow_drops:
            problems.append(
                f"{where}: column(s) {', '.join(dropped)} of table {sheet.table!r} are missing from "
                "the sheet; restore them, or set 'allow_drops: true' to keep them empty"
            )
        if tuple(existing.primary_key) != tuple(sheet.primary_key):
            problems.append(
                f"{where}: the primary key of table {sheet.table!r} is "
                f"({', '.join(existing.primary_key)}), not ({', '.join(sheet.primary_key)})"
            )
        if problems:
            raise ValidationError(f"{where}: the sheet does not fit its table", problems)
        # Columns dropped with allow_drops stay in the table, emptied.
        for column in dropped:
            columns[column] = existing.columns[column]
    schema = TableSchema(columns=columns, primary_key=sheet.primary_key)
    incremental = existing is not None and bool(typed.kept)
    old_rows: dict[Key, Row] = {}
    if existing is not None:
        rows = (
            _rows_with_keys(store, sheet, head, list(typed.rows))
            if incremental
            else store.read_table(sheet.table, head)
        )
        for row in rows:
            old_rows[tuple(_norm(existing.columns[k], row[k]) for k in sheet.primary_key)] = row

    inserts: list[Row] = []
    updates: list[Row] = []
    found = 0
    same_shape = list(columns) == list(typed.columns)  # no emptied (dropped) columns to add
    if not old_rows and same_shape:
        inserts = list(typed.rows.values())  # a new table, or no row found: every row is new
    else:
        for key, row in typed.rows.items():
            full = row if same_shape else {c: row.get(c) for c in columns}
            if not old_rows:
                inserts.append(full)
                continue
            nkey = tuple(_norm(columns[k], v) for k, v in zip(sheet.primary_key, key, strict=True))
            before = old_rows.pop(nkey, None)
            if before is None:
                inserts.append(full)
                continue
            found += 1
            if any(_norm(columns[c], full[c]) != _norm(columns[c], before.get(c)) for c in columns):
                updates.append(full)
    gone: list[Row] = list(old_rows.values())
    if incremental and (vanished is None or vanished > found):
        # Some known row is neither kept nor updated: deleted. Only keys are read to find it.
        assert existing is not None
        present = {
            tuple(_norm(columns[k], v) for k, v in zip(sheet.primary_key, key, strict=True))
            for key in (*typed.rows, *typed.kept)
        }
        names = ", ".join(check_identifier(k) for k in sheet.primary_key)
        keyed = store.query(f"SELECT {names} FROM {check_identifier(sheet.table)}", None, head)
        gone = [
            row
            for row in keyed
            if tuple(_norm(existing.columns[k], row[k]) for k in sheet.primary_key) not in present
        ]
        # Whole rows only for the samples people see.
        sampled = _rows_with_keys(
            store, sheet, head, [tuple(r[k] for k in sheet.primary_key) for r in gone[:SAMPLE]]
        )
        gone = sampled + gone[len(sampled) :]
    deletes = [tuple(row[k] for k in sheet.primary_key) for row in gone]

    change = ChangeSet(sheet.table, schema, inserts, updates, deletes, add_columns)
    result = SheetSync(
        sheet=sheet.name,
        table=sheet.table,
        branch=branch,
        source=raw.source,
        revision=raw.revision,
        added=len(inserts),
        changed=len(updates),
        deleted=len(deletes),
        new_columns=list(add_columns) if existing is not None else [],
        samples={
            "added": inserts[:SAMPLE],
            "changed": updates[:SAMPLE],
            "deleted": gone[:SAMPLE],
        },
    )
    result.message = commit_message(
        sheet.name, result.added, result.changed, result.deleted, raw.source, raw.revision
    )
    return change, result


KEYS_PER_QUERY = 500


def _rows_with_keys(store: Store, sheet: SheetConfig, head: str, keys: list[Key]) -> list[Row]:
    """The table's rows at ``head`` with these primary keys (those that exist)."""
    table, primary = check_identifier(sheet.table), sheet.primary_key
    found: list[Row] = []
    for start in range(0, len(keys), KEYS_PER_QUERY):
        batch = keys[start : start + KEYS_PER_QUERY]
        params: dict[str, Any] = {}
        clauses = []
        for i, key in enumerate(batch):
            parts = []
            for j, (column, value) in enumerate(zip(primary, key, strict=True)):
                params[f"k{i}_{j}"] = value
                parts.append(f"{check_identifier(column)} = %(k{i}_{j})s")
            clauses.append("(" + " AND ".join(parts) + ")")
        found += store.query(f"SELECT * FROM {table} WHERE {' OR '.join(clauses)}", params, head)
    return found


def _norm(kind: str, value: Any) -> Any:
    """One comparable form for a value from the sheet and the same value read back from Dolt."""
    if value is None:
        return None
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "json":
        return json.dumps(json.loads(value) if isinstance(value, str) else value, sort_keys=True)
    if kind == "datetime" and isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if kind == "date" and isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _jsonable(row: Row) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in row.items()
    }
