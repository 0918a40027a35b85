"""An in-memory :class:`~platform_kit.store.base.Store`, for fast unit tests of sync, plan and train.

It keeps what Dolt keeps: commits with parents, messages and hashes, branches, whole-table
snapshots per commit, three-way merges that conflict where Dolt's do (cell by cell), named locks
and claims. The contract suite (tests/integration/test_store_contract.py) runs every behaviour
against both this store and a real ``dolt sql-server``; where they differ on purpose, the
difference is listed in :data:`KNOWN_DIFFERENCES` and shows up in that suite as an expected
failure, never as a silent skip.

:meth:`Store.query` runs on SQLite (in memory, one database per commit read): the queries the kit
runs (a family's ``for_each``, a model's ``query``) are plain SELECTs, which SQLite runs the
same way. MySQL-only functions other than ``CONCAT`` and ``IF`` are not there.

A :class:`MemoryServer` plays the part of the SQL server: stores built on one server see each
other's commits, locks and claims, as two connections to one Dolt server do.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import re
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from platform_kit.config import DoltRemote
from platform_kit.errors import (
    MergeConflictError,
    PushRejectedError,
    RefNotFoundError,
    RemoteError,
    ServiceError,
    StoreError,
)
from platform_kit.store.base import (
    ChangeSet,
    Commit,
    Key,
    MergeResult,
    Row,
    RowChange,
    Store,
    TableDiff,
    TableSchema,
)

# Behaviours of the Dolt store this one does not have, by the name the contract suite uses.
KNOWN_DIFFERENCES: Mapping[str, str] = {
    "cross-process": "locks and claims live in one Python process (Dolt's are server-wide)",
    "privileges": "no users or grants: every caller may do everything",
}

INITIAL_MESSAGE = "Initialize data repository"  # what CREATE DATABASE commits on Dolt
_ANCESTRY = re.compile(r"^(?P<base>.+?)(?P<walk>(?:~\d*|\^)+)$")
_STEP = re.compile(r"~(\d*)|\^")
_PARAM = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s")
_SNAPSHOTS = 8  # SQLite copies of commits kept for queries (plan reads one commit many times)

# Declared SQLite column types; the converters turn text back into what Dolt returns.
_SQLITE_TYPES = {
    "string": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "bool": "INTEGER",
    "date": "KIT_DATE",
    "datetime": "KIT_DATETIME",
    "json": "TEXT",
}
sqlite3.register_converter("KIT_DATE", lambda b: dt.date.fromisoformat(b.decode()))
sqlite3.register_converter("KIT_DATETIME", lambda b: dt.datetime.fromisoformat(b.decode()))


@dataclass(frozen=True)
class _Table:
    schema: TableSchema
    rows: Mapping[Key, Row]  # by primary key; values as Dolt returns them


Snapshot = Mapping[str, _Table]


@dataclass(frozen=True)
class _Commit:
    hash: str
    parents: tuple[str, ...]
    author: str
    date: dt.datetime
    message: str
    tables: Snapshot
    seq: int  # creation order: log order, newest first


@dataclass
class _Database:
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, tuple[str, str]] = field(default_factory=dict)
    remote_branches: dict[str, str] = field(default_factory=dict)  # as of the last fetch


# Remotes by URL, as a remotesapi would serve them: a store's dolt.remote names one of these.
REMOTES: dict[str, MemoryStore] = {}


def serve_remote(url: str, store: MemoryStore) -> DoltRemote:
    """Make ``store`` answer at ``url`` as a remote; returns the DoltRemote naming it."""
    REMOTES[url] = store
    return DoltRemote(url=url)


class MemoryServer:
    """What a SQL server holds for its clients: databases, named locks and claims."""

    def __init__(self) -> None:
        self.databases: dict[str, _Database] = {}
        self.mutex = threading.RLock()
        self.locks: dict[str, threading.Lock] = {}
        self.claims: dict[str, dt.datetime] = {}
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        return next(self._seq)


class MemoryStore(Store):
    """A versioned database in this process's memory.

    Args:
        database: its name (as in platform.yaml's ``dolt.database``).
        server: share one to let several stores see the same data, locks and claims.
        user: recorded as the author of commits (Dolt records the SQL user).
    """

    known_differences = KNOWN_DIFFERENCES

    def __init__(
        self,
        database: str = "training",
        *,
        main_branch: str = "main",
        server: MemoryServer | None = None,
        user: str = "root",
        remote: DoltRemote | None = None,
    ) -> None:
        self.remote = remote
        self.database = database
        self.main_branch = main_branch
        self.server = server or MemoryServer()
        self.user = user
        self._sqlite: OrderedDict[str, sqlite3.Connection] = OrderedDict()
        self._sqlite_mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStore({self.database})"

    # -- state

    def _db(self) -> _Database:
        found = self.server.databases.get(self.database)
        if found is None:
            raise RefNotFoundError(f"no such Dolt database or ref: {self.database!r}")
        return found

    def _commit(self, ref: str) -> _Commit:
        return self._db().commits[self._resolve(ref)]

    def _new_commit(
        self, db: _Database, parents: tuple[str, ...], message: str, tables: Snapshot
    ) -> _Commit:
        # Dolt's hashes: 20 bytes in lowercase base32 with the digits 0-9a-v (32 characters).
        digest = hashlib.sha1(f"{parents}|{message}|{uuid.uuid4()}".encode()).digest()
        commit = _Commit(
            hash=base64.b32hexencode(digest).decode().lower(),
            parents=parents,
            author=self.user,
            date=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            message=message,
            tables=tables,
            seq=self.server.next_seq(),
        )
        db.commits[commit.hash] = commit
        return commit

    # -- databases and branches

    def _create_database(self) -> None:
        if self.remote is not None and self.database not in self.server.databases:
            heads = self._fetch_into(_Database(), self.remote)
            with self.server.mutex:
                db = self.server.databases.setdefault(self.database, heads)
                db.branches.setdefault(self.main_branch, db.remote_branches[self.main_branch])
            return
        with self.server.mutex:
            if self.database in self.server.databases:
                return
            db = _Database()
            init = self._new_commit(db, (), INITIAL_MESSAGE, {})
            db.branches[self.main_branch] = init.hash
            self.server.databases[self.database] = db

    def _branches(self) -> dict[str, str]:
        with self.server.mutex:
            return dict(self._db().branches)

    def _create_branch(self, name: str, start_point: str) -> str:
        with self.server.mutex:
            db = self._db()
            if name in db.branches:
                return db.branches[name]
            db.branches[name] = self._resolve(start_point)
            return db.branches[name]

    def _resolve(self, ref: str) -> str:
        with self.server.mutex:
            db = self._db()
            walk = _ANCESTRY.match(ref)
            base = walk["base"] if walk else ref
            if base == "HEAD":  # a fresh session's HEAD: the main branch
                base = self.main_branch
            commit = db.branches.get(base) or (base if base in db.commits else None)
            if commit is None:
                raise RefNotFoundError(
                    f"no branch, tag or commit {ref!r} in Dolt database {self.database!r}",
                    hint="see 'platform-kit data log' for commits",
                )
            for step in _STEP.finditer(walk["walk"] if walk else ""):
                for _ in range(int(step[1] or 1) if step[0].startswith("~") else 1):
                    parents = db.commits[commit].parents
                    if not parents:
                        raise RefNotFoundError(f"{ref!r} goes back past the first commit")
                    commit = parents[0]
            return commit

    # -- reading

    def _tables(self, ref: str) -> list[str]:
        return sorted(self._commit(ref).tables)

    def _schema(self, table: str, ref: str) -> TableSchema | None:
        found = self._commit(ref).tables.get(table)
        return found.schema if found else None

    def _read_table(self, table: str, ref: str) -> list[Row]:
        found = self._commit(ref).tables.get(table)
        if found is None:
            raise StoreError(f"table {table!r} does not exist at {ref}")
        return [dict(found.rows[k]) for k in sorted(found.rows)]

    def _query(self, sql: str, params: dict[str, Any], ref: str) -> list[Row]:
        commit = self._commit(ref)
        with self._sqlite_mutex:
            conn = self._sqlite.pop(commit.hash, None) or _to_sqlite(commit.tables)
            self._sqlite[commit.hash] = conn  # most recently used last
            while len(self._sqlite) > _SNAPSHOTS:
                self._sqlite.popitem(last=False)[1].close()
            try:
                cur = conn.execute(
                    _PARAM.sub(r":\1", sql), {k: _sqlite_value(v) for k, v in params.items()}
                )
                names = [d[0] for d in cur.description or ()]
                return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            except sqlite3.Error as exc:
                raise StoreError(f"query refused at {commit.hash[:12]}: {exc}") from exc
            finally:
                conn.rollback()  # a query never changes the snapshot

    # -- writing

    def _commit_changes(
        self, branch: str, changes: Sequence[ChangeSet], message: str, expected_head: str | None
    ) -> str | None:
        with self.server.mutex:
            db = self._db()
            if branch not in db.branches:
                raise RefNotFoundError(f"no branch {branch!r} in Dolt database {self.database!r}")
            head = db.branches[branch]
            if expected_head is not None and head != expected_head:
                raise StoreError(
                    f"branch {branch!r} moved from {expected_head[:12]} to {head[:12]} meanwhile",
                    hint="another writer got there first; run the command again",
                )
            tables = dict(db.commits[head].tables)
            for change in changes:
                tables[change.table] = _apply(tables.get(change.table), change)
            if tables == db.commits[head].tables:
                return None  # as Dolt: 'nothing to commit' when every row was already there
            commit = self._new_commit(db, (head,), message, tables)
            db.branches[branch] = commit.hash
            return commit.hash

    def _merge(self, branch: str, into: str, message: str | None) -> MergeResult:
        with self.server.mutex:
            db = self._db()
            for name in (branch, into):
                if name not in db.branches:
                    raise RefNotFoundError(f"no branch {name!r} in Dolt database {self.database!r}")
            theirs, ours = db.branches[branch], db.branches[into]
            if theirs in _ancestors(db, ours):
                return MergeResult(commit=ours, fast_forward=False, changed=False)
            if ours in _ancestors(db, theirs):
                db.branches[into] = theirs
                return MergeResult(commit=theirs, fast_forward=True, changed=True)
            base = _merge_base(db, ours, theirs)
            merged, conflicts = _merge_tables(
                db.commits[base].tables, db.commits[ours].tables, db.commits[theirs].tables
            )
            if conflicts:
                keys = "; ".join(
                    f"{t}: {', '.join(k[:5])}{' ...' if len(k) > 5 else ''}"
                    for t, k in conflicts.items()
                )
                raise MergeConflictError(
                    f"merging {branch!r} into {into!r} conflicts ({keys}); {into!r} is unchanged",
                    conflicts,
                    hint=f"fix those rows on {branch!r} (or in the sheet and sync again), then merge",
                )
            text = message or f"Merge branch '{branch}' into {into}"
            commit = self._new_commit(db, (ours, theirs), text, merged)
            db.branches[into] = commit.hash
            return MergeResult(commit=commit.hash, fast_forward=False, changed=True)

    # -- history

    def _changed_tables(self, from_ref: str, to_ref: str) -> list[str]:
        a, b = self._commit(from_ref).tables, self._commit(to_ref).tables
        return sorted(t for t in set(a) | set(b) if a.get(t) != b.get(t))

    def _diff(self, from_ref: str, to_ref: str, tables: Sequence[str] | None) -> list[TableDiff]:
        a, b = self._commit(from_ref).tables, self._commit(to_ref).tables
        out = []
        for name in self._changed_tables(from_ref, to_ref):
            if tables is not None and name not in tables:
                continue
            old, new = a.get(name), b.get(name)
            columns = (new or old).schema.columns  # type: ignore[union-attr]
            old_rows = old.rows if old else {}
            new_rows = new.rows if new else {}
            diff = TableDiff(name)
            for key in sorted(set(old_rows) | set(new_rows)):
                before = _project(old_rows.get(key), columns)
                after = _project(new_rows.get(key), columns)
                if before == after:
                    continue
                change = RowChange(key=key, old=before, new=after)
                if before is None:
                    diff.added.append(change)
                elif after is None:
                    diff.deleted.append(change)
                else:
                    diff.modified.append(change)
            out.append(diff)
        return out

    def _log(self, ref: str, limit: int) -> list[Commit]:
        with self.server.mutex:
            db = self._db()
            reachable = [db.commits[h] for h in _ancestors(db, self._resolve(ref))]
        reachable.sort(key=lambda c: c.seq, reverse=True)
        return [Commit(c.hash, c.author, c.date, c.message) for c in reachable[:limit]]

    # -- coordination

    def _lock(self, name: str, timeout: float) -> AbstractContextManager[None]:
        return self._held(name, timeout)

    @contextmanager
    def _held(self, name: str, timeout: float) -> Iterator[None]:
        with self.server.mutex:
            lock = self.server.locks.setdefault(f"{self.database}/{name}", threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise StoreError(
                f"lock {name!r} is held by another process; gave up after {timeout:g}s",
                hint="wait for the other run to finish, then run the command again",
            )
        try:
            yield
        finally:
            lock.release()

    def _set_tag(self, name: str, commit: str, note: str) -> None:
        with self.server.mutex:
            self._db().tags[name] = (commit, note)

    def _tag(self, name: str, first_line: bool) -> tuple[str, str] | None:
        with self.server.mutex:
            found = self._db().tags.get(name)
        if found is None or not first_line:
            return found
        return found[0], found[1].split("\n", 1)[0]

    def _claim(self, key: str) -> bool:
        with self.server.mutex:
            if key in self.server.claims:
                return False
            self.server.claims[key] = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            return True

    # -- the remote

    def _origin(self, remote: DoltRemote) -> MemoryStore:
        found = REMOTES.get(remote.url)
        if found is None:
            raise ServiceError(f"the Dolt remote {remote.url} is unreachable")
        return found

    def _fetch_into(self, db: _Database, remote: DoltRemote) -> _Database:
        origin = self._origin(remote)
        with origin.server.mutex:
            theirs = origin._db()
            commits, heads = dict(theirs.commits), dict(theirs.branches)
            tags = dict(theirs.tags)
        with self.server.mutex:
            for commit in commits.values():
                db.commits.setdefault(commit.hash, commit)
            db.remote_branches = heads
            db.tags.update(tags)  # as Dolt's clone and fetch do: the remote's tags win
        return db

    def _fetch(self, remote: DoltRemote) -> dict[str, str]:
        self._fetch_into(self._db(), remote)
        return dict(self._db().remote_branches)

    def _push(self, remote: DoltRemote, branch: str) -> str:
        origin = self._origin(remote)
        with self.server.mutex:
            db = self._db()
            head = self._resolve(branch)
            mine = {h: db.commits[h] for h in _ancestors(db, head)}
        with origin.server.mutex:
            theirs = origin._db()
            current = theirs.branches.get(branch)
            if current is not None and current not in mine:
                raise PushRejectedError(
                    f"the remote {remote.url} refused pushing {branch!r}: its branch has commits "
                    "this one lacks (not a fast-forward); nothing was changed on either side",
                    hint="bring them in first ('platform-kit data pull BRANCH'), then push again",
                )
            for commit in mine.values():
                theirs.commits.setdefault(commit.hash, commit)
            theirs.branches[branch] = head
        return head

    def _tags_within(self, prefix: str, head: str) -> list[str]:
        with self.server.mutex:
            db = self._db()
            history = _ancestors(db, head)
            return sorted(
                n for n, (c, _) in db.tags.items() if n.startswith(prefix) and c in history
            )

    def _push_tags(self, remote: DoltRemote, names: Sequence[str]) -> None:
        origin = self._origin(remote)
        with self.server.mutex:
            db = self._db()
            tags = {name: db.tags[name] for name in names}
            commits = {c: db.commits[c] for c, _ in tags.values()}
        with origin.server.mutex:
            theirs = origin._db()
            for commit in commits.values():
                theirs.commits.setdefault(commit.hash, commit)
            theirs.tags.update(tags)

    def _pull(self, remote: DoltRemote, branch: str) -> str:
        theirs = self._fetch(remote).get(branch)
        if theirs is None:
            raise RemoteError(f"the remote {remote.url} has no branch {branch!r}")
        with self.server.mutex:
            db = self._db()
            local = db.branches.get(branch)
            if local is None or local in _ancestors(db, theirs):
                db.branches[branch] = theirs
                return theirs
            if theirs in _ancestors(db, local):
                return local
        raise RemoteError(
            f"{branch!r} here and on the remote {remote.url} have diverged (each has commits "
            "the other lacks); nothing was changed",
            hint=f"merge the remote's: 'platform-kit data merge remotes/{remote.name}/{branch} "
            f"--into {branch}', then push it",
        )


# ---------------------------------------------------------------------------- values


def stored_value(kind: str, value: Any) -> Any:
    """``value`` as Dolt returns it from a column of kit type ``kind``.

    Raises:
        StoreError: the value does not fit the column (Dolt refuses such a write).
    """
    if value is None:
        return None
    try:
        if kind == "string":
            return value if isinstance(value, str) else str(value)
        if kind == "bool":
            return int(bool(value))  # BOOLEAN is TINYINT(1): it reads back as 0 or 1
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "date":
            if isinstance(value, dt.datetime):
                return value.date()
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if kind == "datetime":
            if isinstance(value, dt.datetime):
                return value.replace(tzinfo=None)
            if isinstance(value, dt.date):
                return dt.datetime(value.year, value.month, value.day)
            return dt.datetime.fromisoformat(str(value))
        if kind == "json":
            return _json_text(json.loads(value) if isinstance(value, str | bytes) else value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"value {value!r} does not fit a {kind} column: {exc}") from exc
    raise StoreError(f"unknown column type {kind!r}")


def _json_text(value: Any) -> str:
    """JSON as Dolt reads it back: compact, keys sorted, whole floats as integers."""
    return json.dumps(
        _json_numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _json_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    return value


def _apply(table: _Table | None, change: ChangeSet) -> _Table:
    """The table after ``change``, as Dolt's CREATE/ALTER/DELETE/upsert sequence leaves it."""
    if table is None:
        table = _Table(TableSchema(dict(change.schema.columns), change.schema.primary_key), {})
    columns = dict(table.schema.columns)
    rows = dict(table.rows)
    for column, kind in change.add_columns.items():
        if column in columns:
            raise StoreError(f"table {change.table!r} already has a column {column!r}")
        columns[column] = kind
        rows = {k: {**r, column: None} for k, r in rows.items()}
    unknown = [c for c in change.schema.columns if c not in columns]
    if unknown:
        raise StoreError(f"table {change.table!r} has no column {', '.join(unknown)}")
    pk = table.schema.primary_key
    for key in change.deletes:
        rows.pop(tuple(stored_value(columns[k], v) for k, v in zip(pk, key, strict=True)), None)
    for row in (*change.inserts, *change.updates):
        values = {c: stored_value(columns[c], row.get(c)) for c in change.schema.columns}
        key = tuple(values.get(k) for k in pk)
        if any(v is None for v in key):
            raise StoreError(f"table {change.table!r}: a row has no value for its primary key")
        before = rows.get(key) or dict.fromkeys(columns)
        rows[key] = {c: values.get(c, before[c]) for c in columns}
    return _Table(TableSchema(columns, pk), rows)


def _project(row: Row | None, columns: Mapping[str, str]) -> Row | None:
    return None if row is None else {c: row.get(c) for c in columns}


# ---------------------------------------------------------------------------- merging


def _ancestors(db: _Database, commit: str) -> set[str]:
    seen, todo = set(), [commit]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(db.commits[current].parents)
    return seen


def _merge_base(db: _Database, a: str, b: str) -> str:
    common = _ancestors(db, a) & _ancestors(db, b)
    return max(common, key=lambda h: db.commits[h].seq)  # the newest common ancestor


def _merge_tables(
    base: Snapshot, ours: Snapshot, theirs: Snapshot
) -> tuple[dict[str, _Table], dict[str, list[str]]]:
    """A three-way merge, cell by cell; conflicting primary keys per table when it fails."""
    merged: dict[str, _Table] = {}
    conflicts: dict[str, list[str]] = {}
    for name in sorted(set(ours) | set(theirs)):
        b, o, t = base.get(name), ours.get(name), theirs.get(name)
        if o == t or t == b or t is None:
            if o is not None:
                merged[name] = o
            continue
        if o is None or o == b:
            merged[name] = t
            continue
        columns = _merge_columns(name, b, o, t)
        rows: dict[Key, Row] = {}
        clashes: list[str] = []
        base_rows = b.rows if b else {}
        for key in sorted(set(base_rows) | set(o.rows) | set(t.rows)):
            row, clash = _merge_row(base_rows.get(key), o.rows.get(key), t.rows.get(key), columns)
            if clash:
                clashes.append("/".join(str(v) for v in key))
            elif row is not None:
                rows[key] = row
        if clashes:
            conflicts[name] = sorted(clashes)
        merged[name] = _Table(TableSchema(columns, o.schema.primary_key), rows)
    return merged, conflicts


def _merge_columns(name: str, b: _Table | None, o: _Table, t: _Table) -> dict[str, str]:
    if o.schema.primary_key != t.schema.primary_key:
        raise StoreError(f"table {name!r}: the branches have different primary keys")
    columns = dict(o.schema.columns)
    for column, kind in t.schema.columns.items():
        if columns.setdefault(column, kind) != kind:
            raise StoreError(f"table {name!r}: column {column!r} has two types on the branches")
    return columns


def _merge_row(
    base: Row | None, ours: Row | None, theirs: Row | None, columns: Mapping[str, str]
) -> tuple[Row | None, bool]:
    """The merged row (None: deleted) and whether the two sides clash."""
    if ours == theirs:
        return _project(ours, columns), False
    if theirs == base:
        return _project(ours, columns), False
    if ours == base:
        return _project(theirs, columns), False
    if ours is None or theirs is None:
        return None, True  # deleted on one side, changed on the other
    old = base or {}
    row: Row = {}
    for column in columns:
        mine, other, was = ours.get(column), theirs.get(column), old.get(column)
        if mine == other or other == was:
            row[column] = mine
        elif mine == was:
            row[column] = other
        else:
            return None, True
    return row, False


# ---------------------------------------------------------------------------- SQLite


def _to_sqlite(tables: Snapshot) -> sqlite3.Connection:
    conn = sqlite3.connect(
        ":memory:", detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False
    )
    conn.create_function("CONCAT", -1, _concat, deterministic=True)
    conn.create_function("IF", 3, lambda c, a, b: a if c else b, deterministic=True)
    for name, table in tables.items():
        columns = list(table.schema.columns)
        definitions = ", ".join(
            f'"{c}" {_SQLITE_TYPES[k]}' for c, k in table.schema.columns.items()
        )
        keys = ", ".join(f'"{k}"' for k in table.schema.primary_key)
        conn.execute(f'CREATE TABLE "{name}" ({definitions}, PRIMARY KEY ({keys}))')
        marks = ", ".join("?" * len(columns))
        conn.executemany(
            f'INSERT INTO "{name}" VALUES ({marks})',
            ([_sqlite_value(table.rows[k][c]) for c in columns] for k in sorted(table.rows)),
        )
    conn.commit()
    return conn


def _concat(*parts: Any) -> str | None:
    return None if any(p is None for p in parts) else "".join(str(p) for p in parts)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value
