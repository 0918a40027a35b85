"""The Dolt backend of :class:`~platform_kit.store.base.Store`, over mysql-connector-python.

Branches and commits are addressed as branch-qualified database names (``training/main``,
``training/sheets/customers``, ``training/<commit hash>``) rather than with ``DOLT_CHECKOUT``,
whose effect is per session and so unsafe on pooled connections. Writes run in ONE SQL
transaction that ends with ``DOLT_COMMIT``: a killed writer leaves the branch head as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from operator import itemgetter
from typing import Any

import mysql.connector
from mysql.connector.abstracts import MySQLConnectionAbstract
from mysql.connector.constants import FieldFlag, FieldType

from platform_kit import env
from platform_kit.config import DoltRemote
from platform_kit.errors import (
    AccessDeniedError,
    MergeConflictError,
    PushRejectedError,
    RefNotFoundError,
    RemoteError,
    ServiceError,
    StoreError,
)
from platform_kit.retry import retry
from platform_kit.sql import quote_string
from platform_kit.store.base import (
    ChangeSet,
    Commit,
    MergeResult,
    Row,
    RowChange,
    Store,
    TableDiff,
    TableSchema,
)

# Kit column type -> SQL type. LONGTEXT because a sheet cell can hold up to 50,000 characters
# (Google's limit) and exports can hold more; key columns need a bounded VARCHAR, and new tables
# start their text columns as VARCHAR(TEXT_WIDTH) when they fit (see _apply).
SQL_TYPES = {
    "string": "LONGTEXT",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "datetime": "DATETIME(6)",
    "json": "JSON",
}
KEY_STRING = "VARCHAR(255)"
TEXT_WIDTH = 1000  # characters of a new table's text columns while they fit ROW_BUDGET
ROW_BUDGET = 56_000  # bytes of VARCHAR per row (Dolt, like MySQL, allows 65,535 in all)
_BATCH = 2000  # rows per multi-row statement: few round trips, well under max_allowed_packet
# From this many new rows on, inserts stream as LOAD DATA LOCAL INFILE (Dolt's fastest path,
# ~2.5x batched INSERTs here); servers that refuse it get batched INSERTs instead.
BULK_ROWS = 5000
LOCK_TIMEOUT = 120  # seconds a writer waits for another one on the same branch
CLAIM_LOCK_TIMEOUT = 60  # seconds a claim waits for another claim to finish
_LOCK_POLL = 5  # seconds per GET_LOCK call: long waits stay interruptible
_TRANSIENT_ERRNOS = {2003, 2006, 2013, 2055}  # cannot connect, gone away, lost connection
_DUPLICATE_KEY, _SERIALIZATION_FAILURE = 1062, 1213
_MISSING_ERRNOS = {1049, 1146}  # database not found, table not found
_COMMIT_HASH = re.compile(r"^[0-9a-v]{32}$")
_REFUSED = re.compile(r"command denied|access denied|does not have the correct permissions", re.I)
_BRANCH_REFUSED = re.compile(r"permissions on branch `([^`]+)`")
# What a refused statement was, for the error: its verb, and the object of DDL and LOAD DATA.
_STATEMENT_KIND = re.compile(
    r"^\s*(CALL\s+\w+|(?:CREATE|ALTER|DROP)\s+(?:TABLE|DATABASE)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
    r"(?:`[^`]+`|\w+)(?:\.(?:`[^`]+`|\w+))?|LOAD\s+DATA(?:\s+LOCAL\s+INFILE)?|"
    r"(?:INSERT|REPLACE)\s+INTO\s+(?:`[^`]+`|\w+)(?:\.(?:`[^`]+`|\w+))?|SET\s+GLOBAL|\w+)",
    re.I,
)
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_PACKED_STRINGS = {FieldType.VARCHAR, FieldType.VAR_STRING, FieldType.STRING}
_PACKED_INTEGERS = {
    FieldType.TINY,
    FieldType.SHORT,
    FieldType.INT24,
    FieldType.LONG,
    FieldType.LONGLONG,
}
_BINARY_CHARSET = 63
USERS_HINT = "an admin runs infra/dolt-users.py, which gives each kit user what its jobs need"

# The kit's bookkeeping, outside the data database: rows no commit, branch or merge touches.
# infra/dolt-users.py creates the same table for deployments whose users may not.
BOOKKEEPING_DATABASE = "platform_kit"
CLAIMS_DDL = (
    f"CREATE TABLE IF NOT EXISTS `{BOOKKEEPING_DATABASE}`.`claims` "
    "(`key` VARCHAR(255) NOT NULL PRIMARY KEY, claimed_at DATETIME(6) NOT NULL)"
)

log = logging.getLogger(__name__)


def kit_type(sql_type: str) -> str:
    """Map a column type as Dolt reports it back to a kit column type."""
    t = sql_type.lower()
    if t.startswith("tinyint(1)") or t.startswith("bool"):
        return "bool"
    if "int" in t:
        return "int"
    if t.startswith(("double", "float", "decimal", "real")):
        return "float"
    if t.startswith("datetime") or t.startswith("timestamp"):
        return "datetime"
    if t.startswith("date"):
        return "date"
    if t.startswith("json"):
        return "json"
    return "string"


def _q(identifier: str) -> str:
    return f"`{identifier}`"  # callers have validated identifiers (base.check_identifier)


def lock_key(scope: str, name: str) -> str:
    """A GET_LOCK name: server-wide, so prefixed; MySQL caps them at 64 characters."""
    full = f"platform-kit/{scope}/{name}"
    if len(full) <= 64:
        return full
    return f"{full[:40]}#{hashlib.sha256(full.encode()).hexdigest()[:23]}"


class DoltStore(Store):
    """A database on a ``dolt sql-server``."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        main_branch: str = "main",
        connect_timeout: int = 10,
        *,
        remote: DoltRemote | None = None,
        remote_attempts: int = 3,
    ) -> None:
        self.host, self.port, self.user = host, port, user
        self._password = password
        self.database = database
        self.main_branch = main_branch
        self.connect_timeout = connect_timeout
        self.remote = remote
        self.remote_attempts = remote_attempts  # each unreachable try takes Dolt ~6 s itself
        self._commits: set[str] = set()  # full hashes seen to exist

    def __repr__(self) -> str:  # never shows the password
        return f"DoltStore({self.user}@{self.host}:{self.port}/{self.database})"

    # -- connections

    def _connect(self, database: str | None, autocommit: bool = True) -> MySQLConnectionAbstract:
        def attempt() -> MySQLConnectionAbstract:
            return mysql.connector.connect(  # type: ignore[return-value]
                host=self.host,
                port=self.port,
                user=self.user,
                password=self._password,
                database=database,
                autocommit=autocommit,
                connection_timeout=self.connect_timeout,
                use_pure=True,
                allow_local_infile=True,
            )

        try:
            return retry(
                attempt, transient=_transient, what=f"connect to Dolt at {self.host}:{self.port}"
            )
        except mysql.connector.Error as exc:
            if _transient(exc):
                raise ServiceError(
                    f"Dolt at {self.host}:{self.port} is unreachable ({exc.msg})",
                    hint="check 'platform-kit services status'",
                ) from exc
            text = str(exc.msg)
            if database and "database not found" in text.lower():
                raise RefNotFoundError(f"no such Dolt database or ref: {database!r}") from exc
            if "using password" in text.lower():
                raise AccessDeniedError(
                    f"Dolt at {self.host}:{self.port} refused the login of user {self.user!r}",
                    hint="check DOLT_USER and DOLT_PASSWORD",
                ) from exc
            if database and "access denied" in text.lower():
                raise AccessDeniedError(
                    f"Dolt refused user {self.user!r} access to database {database.split('/')[0]!r}",
                    hint=f"grant the user rights on it: {USERS_HINT}",
                ) from exc
            raise StoreError(f"Dolt refused the connection: {env.redact(text)}") from exc

    @contextmanager
    def _cursor(self, database: str | None, *, dictionary: bool = False) -> Iterator[Any]:
        conn = self._connect(database)
        cur: Any = None
        try:
            cur = conn.cursor(dictionary=dictionary)
            yield cur
        except mysql.connector.Error as exc:
            raise self._translate(exc, cur) from exc
        finally:
            conn.close()

    def _translate(self, exc: mysql.connector.Error, cur: Any, doing: str = "") -> Exception:
        return _translate(exc, doing, statement=_statement(cur), user=self.user)

    def _db(self, ref: str | None = None) -> str:
        return f"{self.database}/{ref}" if ref else self.database

    def _rows(self, sql: str, params: Any = None, *, ref: str | None = None) -> list[Row]:
        with self._cursor(self._db(ref), dictionary=True) as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall())

    # -- databases and branches

    def _create_database(self) -> None:
        # Never CREATE DATABASE one that exists: a user with rights on that database only may
        # not run it at all, even with IF NOT EXISTS.
        if not self._database_exists(self.database):
            if self.remote is not None:
                try:
                    self._clone(self.remote)
                except StoreError:
                    if not self._database_exists(self.database):
                        raise
                    # Another writer cloned it since the check above: kept, like any clone.
                    self._add_origin(self.remote)
                return
            with self._cursor(None) as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {_q(self.database)}")
        elif self.remote is not None:
            self._add_origin(self.remote)

    def _database_exists(self, name: str) -> bool:
        """Whether ``name`` exists and this user may see it (both needed to use it)."""
        with self._cursor(None) as cur:  # no database: it may not exist
            cur.execute(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE LOWER(SCHEMA_NAME) = LOWER(%s)",
                (name,),
            )
            return bool(cur.fetchall())

    def _branches(self) -> dict[str, str]:
        return {r["name"]: r["hash"] for r in self._rows("SELECT name, hash FROM dolt_branches")}

    def _create_branch(self, name: str, start_point: str) -> str:
        existing = self._branches()
        if name in existing:
            return existing[name]
        commit = self.resolve(start_point)
        with self._cursor(self._db()) as cur:
            try:
                cur.execute("CALL DOLT_BRANCH(%s, %s)", (name, commit))
                cur.fetchall()
            except mysql.connector.Error as exc:
                if "already exists" not in str(exc.msg).lower():
                    raise
            else:
                return commit
        # Another writer created it since the check above: left as is, like any existing one.
        return self._branches()[name]

    def _resolve(self, ref: str) -> str:
        # dolt_hashof() accepts a full hash, but checking it exists needs a read (once: a
        # commit, once there, stays).
        if ref in self._commits:
            return ref
        if _COMMIT_HASH.match(ref) and self._rows("SELECT 1 FROM dolt_log(%s) LIMIT 1", (ref,)):
            self._commits.add(ref)
            return ref
        try:
            rows = self._rows("SELECT dolt_hashof(%s) AS h", (ref,))
        except AccessDeniedError:
            raise
        except StoreError as exc:
            raise RefNotFoundError(
                f"no branch, tag or commit {ref!r} in Dolt database {self.database!r}",
                hint="see 'platform-kit data log' for commits",
            ) from exc
        return str(rows[0]["h"])

    # -- reading

    def _tables(self, ref: str) -> list[str]:
        commit = self.resolve(ref)
        return sorted(
            str(next(iter(r.values())))
            for r in self._rows("SHOW TABLES", ref=commit)
            if not str(next(iter(r.values()))).startswith("dolt_")
        )

    def _schema(self, table: str, ref: str) -> TableSchema | None:
        commit = self.resolve(ref)
        if table not in self._tables(commit):
            return None
        columns = self._rows(f"SHOW COLUMNS FROM {_q(table)}", ref=commit)
        return TableSchema(
            columns={c["Field"]: kit_type(str(c["Type"])) for c in columns},
            primary_key=tuple(c["Field"] for c in columns if c["Key"] == "PRI"),
        )

    def _read_table(self, table: str, ref: str) -> list[Row]:
        commit = self.resolve(ref)
        schema = self._schema(table, commit)
        if schema is None:
            raise StoreError(f"table {table!r} does not exist at {ref}")
        order = ", ".join(_q(k) for k in schema.primary_key) or "1"
        return self._rows(f"SELECT * FROM {_q(table)} ORDER BY {order}", ref=commit)

    def _query(self, sql: str, params: dict[str, Any], ref: str) -> list[Row]:
        return self._rows(sql, params or None, ref=self.resolve(ref))

    def _query_groups(
        self, sql: str, params: dict[str, Any], ref: str, column: str
    ) -> list[tuple[Any, list[Row]]]:
        commit = self.resolve(ref)
        packed = None if _ORDER_BY.search(sql) else self._packed_groups(sql, params, commit, column)
        return packed if packed is not None else super()._query_groups(sql, params, commit, column)

    def _packed_groups(
        self, sql: str, params: dict[str, Any], commit: str, column: str
    ) -> list[tuple[Any, list[Row]]] | None:
        """The groups as Dolt packs them, one JSON document each; None when they cannot be.

        mysql-connector's pure-Python protocol costs about 5 us of CPU per row; ``json.loads``
        of one document per group, a tenth of that (train reads thousands of rows per model).
        Only strings and integers travel this way: JSON gives those back exactly as the row
        protocol does. A derived table may lose its ORDER BY, so ordered queries do not.
        """
        conn = self._connect(self._db(commit))
        try:
            cur: Any = conn.cursor()
            cur.execute(f"SELECT * FROM ({sql}) AS t LIMIT 0", params or None)
            cur.fetchall()
            fields = list(cur.description or ())
            names = [str(f[0]) for f in fields]
            others = [n for n in names if n != column]
            if (
                column not in names
                or not others
                or len(set(names)) != len(names)
                or any("`" in n for n in names)
                or not all(_packable(f) for f in fields)
            ):
                return None
            key, values = f"t.`{column}`", ", ".join(f"t.`{n}`" for n in others)
            # Grouped by the bytes, as Python groups values: a case-insensitive collation
            # would put 'A' and 'a' together.
            cur.execute(
                f"SELECT ANY_VALUE({key}), JSON_ARRAYAGG(JSON_ARRAY({values})) FROM ({sql}) AS t "
                f"GROUP BY CAST({key} AS BINARY)",
                params or None,
            )
            return [
                (value, [dict(zip(others, row, strict=True)) for row in json.loads(packed)])
                for value, packed in cur.fetchall()
            ]
        except mysql.connector.Error as exc:
            log.debug("Dolt did not pack the groups, reading row by row: %s", exc)
            return None  # the plain query, run next, reports what is wrong with it
        finally:
            conn.close()

    # -- writing

    def _commit_changes(
        self, branch: str, changes: Sequence[ChangeSet], message: str, expected_head: str | None
    ) -> str | None:
        if branch not in self._branches():
            raise RefNotFoundError(f"no branch {branch!r} in Dolt database {self.database!r}")
        conn = self._connect(self._db(branch), autocommit=False)
        cur: Any = None
        try:
            cur = conn.cursor()
            self._branch_lock(cur, branch)
            # Leftovers of a writer killed mid-transaction live only in the working set; drop them.
            cur.execute("CALL DOLT_RESET('--hard')")
            cur.fetchall()
            conn.commit()
            cur.execute("START TRANSACTION")
            cur.execute("SELECT dolt_hashof('HEAD')")
            head = cur.fetchone()[0]
            if expected_head is not None and head != expected_head:
                raise StoreError(
                    f"branch {branch!r} moved from {expected_head[:12]} to {head[:12]} meanwhile",
                    hint="another writer got there first; run the command again",
                )
            for change in changes:
                _apply(cur, change, self.user)
            try:
                cur.execute("CALL DOLT_COMMIT('-A', '-m', %s)", (message,))
            except mysql.connector.Error as exc:
                if "nothing to commit" not in str(exc.msg).lower():
                    raise
                conn.rollback()  # every row written was already there as it is
                return None
            commit = str(cur.fetchone()[0])
            cur.fetchall()
            conn.commit()
            return commit
        except mysql.connector.Error as exc:
            conn.rollback()
            raise self._translate(exc, cur, f"writing to branch {branch!r}") from exc
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def _branch_lock(self, cur: Any, branch: str) -> None:
        """Hold the branch's write lock until the connection closes.

        Dolt merges concurrent transactions on one branch instead of failing one, so writers are
        serialized with a named lock; a loser then sees that the head moved.
        """
        if not _get_lock(cur, lock_key(f"{self.database}/branch", branch), LOCK_TIMEOUT):
            raise StoreError(
                f"another writer has held branch {branch!r} for {LOCK_TIMEOUT}s",
                hint="wait for it to finish, then run the command again",
            )

    def _merge(self, branch: str, into: str, message: str | None) -> MergeResult:
        conn = self._connect(self._db(into), autocommit=False)
        cur: Any = None
        try:
            cur = conn.cursor()
            self._branch_lock(cur, into)
            conn.commit()  # a fresh transaction: see the head as it is after the wait
            before = self.resolve(into)
            args = (branch, "-m", message) if message else (branch,)
            cur.execute(f"CALL DOLT_MERGE({', '.join(['%s'] * len(args))})", args)
            _, fast_forward, conflicts, _ = cur.fetchone()
            cur.fetchall()
            if int(conflicts):
                found = _conflicts(cur)
                conn.rollback()  # nothing of the merge reaches the target branch
                keys = "; ".join(
                    f"{t}: {', '.join(k[:5])}{' ...' if len(k) > 5 else ''}"
                    for t, k in found.items()
                )
                raise MergeConflictError(
                    f"merging {branch!r} into {into!r} conflicts ({keys}); {into!r} is unchanged",
                    found,
                    hint=f"fix those rows on {branch!r} (or in the sheet and sync again), then merge",
                )
            conn.commit()
        except mysql.connector.Error as exc:
            conn.rollback()
            raise self._translate(exc, cur, f"merging {branch!r} into {into!r}") from exc
        finally:
            conn.close()
        after = self.resolve(into)
        changed = after != before  # 'up to date' or 'a is ahead of b' leave it as it was
        return MergeResult(
            commit=after, fast_forward=bool(int(fast_forward)) and changed, changed=changed
        )

    # -- history

    def _changed_tables(self, from_ref: str, to_ref: str) -> list[str]:
        a, b = self.resolve(from_ref), self.resolve(to_ref)
        if a == b:
            return []
        rows = self._rows(
            "SELECT from_table_name, to_table_name FROM dolt_diff_summary(%s, %s)", (a, b)
        )
        return sorted({str(r["to_table_name"] or r["from_table_name"]) for r in rows})

    def _diff(self, from_ref: str, to_ref: str, tables: Sequence[str] | None) -> list[TableDiff]:
        a, b = self.resolve(from_ref), self.resolve(to_ref)
        wanted = self._changed_tables(a, b)
        if tables is not None:
            wanted = [t for t in wanted if t in tables]
        out = []
        for table in wanted:
            schema = self._schema(table, b) or self._schema(table, a)
            if schema is None:
                continue
            diff = TableDiff(table)
            rows = self._rows("SELECT * FROM dolt_diff(%s, %s, %s)", (a, b, table))
            for row in rows:
                old = _side(row, "from_", schema) if row["diff_type"] != "added" else None
                new = _side(row, "to_", schema) if row["diff_type"] != "removed" else None
                side = new if new is not None else old
                assert side is not None
                change = RowChange(key=tuple(side[k] for k in schema.primary_key), old=old, new=new)
                {"added": diff.added, "modified": diff.modified, "removed": diff.deleted}[
                    row["diff_type"]
                ].append(change)
            out.append(diff)
        return out

    def _log(self, ref: str, limit: int) -> list[Commit]:
        commit = self.resolve(ref)
        rows = self._rows(
            "SELECT commit_hash, committer, date, message FROM dolt_log LIMIT %s",
            (limit,),
            ref=commit,
        )
        return [Commit(r["commit_hash"], r["committer"], r["date"], r["message"]) for r in rows]

    def _set_tag(self, name: str, commit: str, note: str) -> None:
        with self._cursor(self._db()) as cur:
            cur.execute("SELECT 1 FROM dolt_tags WHERE tag_name = %s", (name,))
            if cur.fetchall():
                cur.execute("CALL DOLT_TAG('-d', %s)", (name,))
                cur.fetchall()
            cur.execute("CALL DOLT_TAG(%s, %s, '-m', %s)", (name, commit, note))
            cur.fetchall()

    def _tag(self, name: str, first_line: bool) -> tuple[str, str] | None:
        note = "SUBSTRING_INDEX(message, '\\n', 1)" if first_line else "message"
        rows = self._rows(
            f"SELECT tag_hash, {note} AS message FROM dolt_tags WHERE tag_name = %s", (name,)
        )
        return (str(rows[0]["tag_hash"]), str(rows[0]["message"])) if rows else None

    # -- coordination

    def _lock(self, name: str, timeout: float) -> AbstractContextManager[None]:
        return self._held(name, timeout)

    @contextmanager
    def _held(self, name: str, timeout: float) -> Iterator[None]:
        # A connection of its own, open while the lock is held: the lock dies with it, so a
        # killed holder frees it. (If the server drops the connection, the lock is lost too.)
        conn = self._connect(None)
        try:
            cur: Any = conn.cursor()
            try:
                got = _get_lock(cur, lock_key(self.database, name), timeout)
            except mysql.connector.Error as exc:
                raise self._translate(exc, cur, f"taking lock {name!r}") from exc
            if not got:
                raise StoreError(
                    f"lock {name!r} is held by another process; gave up after {timeout:g}s",
                    hint="wait for the other run to finish, then run the command again",
                )
            try:
                yield
            finally:
                with contextlib.suppress(mysql.connector.Error):
                    cur.execute("SELECT RELEASE_LOCK(%s)", (lock_key(self.database, name),))
                    cur.fetchall()
        finally:
            with contextlib.suppress(mysql.connector.Error):
                conn.close()

    def _claim(self, key: str) -> bool:
        conn = self._connect(None)
        cur: Any = None
        try:
            cur = conn.cursor()
            # Claims are serialized server-wide: Dolt merges two concurrent transactions that
            # insert the very same row instead of failing one, and both would count as first.
            if not _get_lock(cur, lock_key("bookkeeping", "claims"), CLAIM_LOCK_TIMEOUT):
                raise StoreError(
                    f"could not record claim {key!r}: other claims held the lock for "
                    f"{CLAIM_LOCK_TIMEOUT}s",
                    hint="check the Dolt server's load, then run the command again",
                )
            return self._insert_claim(cur, key)
        except mysql.connector.Error as exc:
            if _BRANCH_REFUSED.search(str(exc.msg)):
                raise StoreError(
                    f"Dolt refused recording claim {key!r}: dolt_branch_control does not let "
                    f"user {self.user!r} write branch 'main' of database {BOOKKEEPING_DATABASE}",
                    hint=f"add a 'write' row for it there; {USERS_HINT}",
                ) from exc
            raise self._translate(exc, cur, f"recording claim {key!r}") from exc
        finally:
            with contextlib.suppress(mysql.connector.Error):
                conn.close()  # releases the claims lock

    def _insert_claim(self, cur: Any, key: str) -> bool:
        insert = (
            f"INSERT INTO `{BOOKKEEPING_DATABASE}`.`claims` (`key`, claimed_at) VALUES (%s, NOW(6))"
        )
        for attempt in (1, 2):
            try:
                cur.execute(insert, (key,))
                return True
            except mysql.connector.Error as exc:
                if exc.errno == _DUPLICATE_KEY:
                    return False
                if exc.errno == _SERIALIZATION_FAILURE:  # a writer that took no lock got there
                    cur.execute(
                        f"SELECT 1 FROM `{BOOKKEEPING_DATABASE}`.`claims` WHERE `key` = %s", (key,)
                    )
                    if cur.fetchall():
                        return False
                    raise
                if attempt == 2 or not _missing(exc):
                    raise
            self._create_bookkeeping(cur)
        raise AssertionError("unreachable")

    def _create_bookkeeping(self, cur: Any) -> None:
        """Create ``platform_kit.claims``, where this user may (a local root); else say who can."""
        try:
            cur.execute(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                (BOOKKEEPING_DATABASE,),
            )
            if not cur.fetchall():
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{BOOKKEEPING_DATABASE}`")
            cur.execute(CLAIMS_DDL)
        except mysql.connector.Error as exc:
            if not _REFUSED.search(str(exc.msg)):
                raise
            raise StoreError(
                f"the kit's bookkeeping table {BOOKKEEPING_DATABASE}.claims is missing and Dolt "
                f"refused {statement_kind(_statement(cur))} for user {self.user!r}",
                hint="an admin runs infra/dolt-users.py: it creates the table and grants the "
                "kit's users SELECT, INSERT on it",
            ) from exc

    # -- the remote: Dolt runs clone, fetch and push in the server, which reads
    # DOLT_REMOTE_PASSWORD from its own environment; the kit passes only --user.

    def _remote_user(self, remote: DoltRemote) -> list[str]:
        user = env.get(env.DOLT_REMOTE_USER) or remote.user
        return ["--user", user] if user else []

    def _remote_call(
        self,
        remote: DoltRemote,
        procedure: str,
        args: Sequence[str],
        doing: str,
        *,
        db: bool = True,
    ) -> list[Any]:
        """``CALL procedure(args)`` with the remote user; an unreachable remote is tried again."""
        values = [*self._remote_user(remote), *args]
        sql = f"CALL {procedure}({', '.join(['%s'] * len(values))})"

        def attempt() -> list[Any]:
            conn = self._connect(self._db() if db else None)
            try:
                cur = conn.cursor()
                cur.execute(sql, values)
                return list(cur.fetchall())
            finally:
                with contextlib.suppress(mysql.connector.Error):
                    conn.close()

        try:
            return retry(
                attempt,
                transient=_remote_unreachable,
                what=f"{doing} ({remote.url})",
                attempts=self.remote_attempts,
                first_delay=1.0,
            )
        except mysql.connector.Error as exc:
            raise self._remote_error(exc, remote, doing, procedure) from exc

    def _remote_error(
        self, exc: mysql.connector.Error, remote: DoltRemote, doing: str, procedure: str
    ) -> Exception:
        text = env.redact(str(exc.msg))
        lower = text.lower()
        user = (self._remote_user(remote) or ["", "(none)"])[1]
        creds = "check DOLT_REMOTE_USER (or the user in dolt.remote) and DOLT_REMOTE_PASSWORD"
        if _remote_unreachable(exc):
            return ServiceError(
                f"the Dolt remote {remote.url} is unreachable ({doing}; tried "
                f"{self.remote_attempts} times): {_rpc_reason(text)}",
                hint="check dolt.remote and the network; nothing was changed on either side",
            )
        if "must set dolt_remote_password" in lower or "dolt_remote_password" in lower:
            return RemoteError(
                f"the Dolt server at {self.host}:{self.port} has no DOLT_REMOTE_PASSWORD in its "
                f"environment ({doing} as user {user!r})",
                hint="export DOLT_REMOTE_PASSWORD and restart that server (local: 'platform-kit "
                "services down' then 'services up')",
            )
        if "rpc error" not in lower and _REFUSED.search(text):  # this server refused the CALL
            return _translate(exc, doing, statement=f"CALL {procedure}()", user=self.user)
        if "unauthenticated" in lower or "permissiondenied" in lower or "access denied" in lower:
            return RemoteError(
                f"the Dolt remote {remote.url} refused user {user!r} ({doing})",
                hint=f"{creds}, set where the Dolt server holding the clone runs; the remote user "
                "needs CLONE_ADMIN to read and SUPER to push",
            )
        if "non-fast-forward" in lower or "[rejected]" in lower:
            return PushRejectedError(
                f"the remote {remote.url} refused {doing}: its branch has commits this one lacks "
                "(not a fast-forward); nothing was changed on either side",
                hint="bring them in first ('platform-kit data pull BRANCH', merging where they "
                "diverged), then push again",
            )
        if "does not appear to be a dolt database" in lower or "repository not found" in lower:
            return RemoteError(
                f"there is no Dolt database at {remote.url} ({doing})",
                hint="check dolt.remote; create the database on the remote first",
            )
        first = next((line for line in text.splitlines() if line.strip()), text)
        return RemoteError(f"the Dolt remote {remote.url} refused {doing}: {first}")

    def _clone(self, remote: DoltRemote) -> None:
        self._remote_call(
            remote,
            "DOLT_CLONE",
            [remote.url, self.database],
            f"cloning into database {self.database!r}",
            db=False,
        )
        self._add_origin(remote)

    def _add_origin(self, remote: DoltRemote) -> None:
        rows = self._rows("SELECT url FROM dolt_remotes WHERE name = %s", (remote.name,))
        if not rows:
            with self._cursor(self._db()) as cur:
                cur.execute("CALL DOLT_REMOTE('add', %s, %s)", (remote.name, remote.url))
                cur.fetchall()
        elif str(rows[0]["url"]).rstrip("/") != remote.url.rstrip("/"):
            raise RemoteError(
                f"Dolt database {self.database!r} has remote {remote.name!r} at "
                f"{rows[0]['url']}, not dolt.remote {remote.url}",
                hint=f"fix dolt.remote, or CALL DOLT_REMOTE('remove', '{remote.name}') in it",
            )

    def _fetch(self, remote: DoltRemote) -> dict[str, str]:
        self._remote_call(remote, "DOLT_FETCH", ["--prune", remote.name], "fetching")
        return self._remote_heads(remote)

    def _remote_heads(self, remote: DoltRemote) -> dict[str, str]:
        prefix = f"remotes/{remote.name}/"
        return {
            str(r["name"])[len(prefix) :]: str(r["hash"])
            for r in self._rows("SELECT name, hash FROM dolt_remote_branches")
            if str(r["name"]).startswith(prefix)
        }

    def _push(self, remote: DoltRemote, branch: str) -> str:
        head = self.resolve(branch)
        self._remote_call(
            remote, "DOLT_PUSH", [remote.name, f"{branch}:{branch}"], f"pushing {branch!r}"
        )
        return head

    def _tags_within(self, prefix: str, head: str) -> list[str]:
        rows = self._rows(
            "SELECT tag_name FROM dolt_tags WHERE tag_name LIKE %s "
            "AND DOLT_MERGE_BASE(tag_hash, %s) = tag_hash ORDER BY tag_name",
            (prefix.replace("%", "\\%").replace("_", "\\_") + "%", head),
        )
        return [str(r["tag_name"]) for r in rows]

    def _push_tags(self, remote: DoltRemote, names: Sequence[str]) -> None:
        # A tag that moved on this side moves on the remote too (Dolt asks no --force for it).
        specs = [f"refs/tags/{name}:refs/tags/{name}" for name in names]
        self._remote_call(remote, "DOLT_PUSH", [remote.name, *specs], "pushing the sync tags")

    def _pull(self, remote: DoltRemote, branch: str) -> str:
        theirs = self._fetch(remote).get(branch)
        if theirs is None:
            raise RemoteError(f"the remote {remote.url} has no branch {branch!r}")
        local = self._branches().get(branch)
        if local is None:
            with self._cursor(self._db()) as cur:
                cur.execute("CALL DOLT_BRANCH(%s, %s)", (branch, theirs))
                cur.fetchall()
            return theirs
        if local == theirs:
            return local
        base = str(self._rows("SELECT DOLT_MERGE_BASE(%s, %s) AS b", (local, theirs))[0]["b"])
        if base == theirs:  # ahead of the remote: its commits are all here already
            return local
        if base != local:
            raise RemoteError(
                f"{branch!r} here and on the remote {remote.url} have diverged (each has commits "
                "the other lacks); nothing was changed",
                hint=f"merge the remote's: 'platform-kit data merge remotes/{remote.name}/{branch} "
                f"--into {branch}', then push it",
            )
        return self._merge(theirs, branch, None).commit


def _apply(cur: Any, change: ChangeSet, user: str = "") -> None:
    schema = change.schema
    table = _q(change.table)
    texts = [c for c, t in schema.columns.items() if t == "string" and c not in schema.primary_key]
    # Short text loads ~30% faster as VARCHAR than as out-of-row LONGTEXT, while the row fits
    # MySQL's 64 KiB row limit (4 bytes a character); longer values widen it (_widen).
    inline = len(texts) * TEXT_WIDTH * 4 <= ROW_BUDGET
    definitions = [
        f"{_q(c)} {_column_type(c, t, schema, inline)}"
        + (" NOT NULL" if c in schema.primary_key else "")
        for c, t in schema.columns.items()
    ]
    keys = ", ".join(_q(k) for k in schema.primary_key)
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(definitions)}, PRIMARY KEY ({keys}))"
    )
    for column, kind in change.add_columns.items():
        cur.execute(f"ALTER TABLE {table} ADD COLUMN {_q(column)} {SQL_TYPES[kind]}")
    _widen(cur, change, texts)
    columns = list(schema.columns)
    key_cols = list(schema.primary_key)
    for start in range(0, len(change.deletes), _BATCH):
        batch = change.deletes[start : start + _BATCH]
        one = "(" + ", ".join(["%s"] * len(key_cols)) + ")"
        cur.execute(
            f"DELETE FROM {table} WHERE ({keys}) IN ({', '.join([one] * len(batch))})",
            [v for key in batch for v in key],
        )
    upserts = change.updates
    if len(change.inserts) >= BULK_ROWS:
        if not _load_data(cur, change.table, columns, change.inserts, schema, user):
            upserts = change.inserts + change.updates
    else:
        upserts = change.inserts + change.updates
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    names = ", ".join(_q(c) for c in columns)
    others = [c for c in columns if c not in key_cols] or key_cols
    update = ", ".join(f"{_q(c)} = VALUES({_q(c)})" for c in others)
    for start in range(0, len(upserts), _BATCH):
        rows = upserts[start : start + _BATCH]
        cur.execute(
            f"INSERT INTO {table} ({names}) VALUES {', '.join([placeholders] * len(rows))} "
            f"ON DUPLICATE KEY UPDATE {update}",
            [row.get(c) for row in rows for c in columns],
        )


def _column_type(column: str, kind: str, schema: TableSchema, inline: bool) -> str:
    if kind != "string":
        return SQL_TYPES[kind]
    if column in schema.primary_key:
        return KEY_STRING
    return f"VARCHAR({TEXT_WIDTH})" if inline else SQL_TYPES[kind]


def _widen(cur: Any, change: ChangeSet, texts: list[str]) -> None:
    """Turn VARCHAR columns into LONGTEXT where a value to write is longer than they hold."""
    rows = change.inserts + change.updates
    if not rows or not texts:
        return
    cur.execute(f"SHOW COLUMNS FROM {_q(change.table)}")
    declared = {str(c[0]): str(c[1]).lower() for c in cur.fetchall()}
    for column in texts:
        width = re.fullmatch(r"varchar\((\d+)\)", declared.get(column, ""))
        if width is None:
            continue
        values = _column_values(rows, column)
        try:
            longest = max(map(len, filter(None, values)), default=0)
        except TypeError:  # other values than text (a caller's ints): text only
            longest = max((len(v) for v in values if isinstance(v, str)), default=0)
        if longest > int(width[1]):
            cur.execute(
                f"ALTER TABLE {_q(change.table)} MODIFY COLUMN {_q(column)} {SQL_TYPES['string']}"
            )


def _load_data(
    cur: Any, table: str, columns: list[str], rows: list[Row], schema: TableSchema, user: str = ""
) -> bool:
    """Insert ``rows`` with LOAD DATA LOCAL INFILE; False when the server does not allow it.

    Dolt wants ``local_infile`` on and the FILE privilege, which per-role users should not hold
    (it reads any file the server can); both refusals come before any row is read, and the
    transaction goes on with batched INSERTs.

    The rows go through a named pipe, written by a thread while Dolt reads: Dolt takes rows in
    as they come, so writing them costs little more than Dolt's own work.
    """
    kinds = [schema.columns[c] for c in columns]
    folder = tempfile.mkdtemp(prefix="platform-kit-load-")
    path = os.path.join(folder, "rows.tsv")
    feeder = _Feeder(path, rows, columns, kinds)
    try:
        cur.execute(
            f"LOAD DATA LOCAL INFILE {quote_string(path)} INTO TABLE {_q(table)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({', '.join(_q(c) for c in columns)})"
        )
    except mysql.connector.Error as exc:
        text = str(exc.msg)
        if "local_infile" in text.lower():
            why = "local_infile is off on the server"
        elif _REFUSED.search(text):
            why = f"user {user!r} has no FILE privilege"
        else:
            raise
        log.info(
            "LOAD DATA LOCAL INFILE refused (%s): inserting %d rows in batches", why, len(rows)
        )
        return False
    finally:
        try:
            feeder.finish()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return True


class _Feeder:
    """Writes rows as LOAD DATA text to ``path``: a named pipe fed by a thread, or (without
    named pipes) a file written first."""

    def __init__(self, path: str, rows: list[Row], columns: list[str], kinds: list[str]) -> None:
        self.path, self.rows, self.columns, self.kinds = path, rows, columns, kinds
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if hasattr(os, "mkfifo"):
            os.mkfifo(path, 0o600)
            self.thread = threading.Thread(target=self._run, name="load-data", daemon=True)
            self.thread.start()
        else:
            self._write()

    def _run(self) -> None:
        try:
            self._write()  # opening waits for the reader: Dolt asks for the file
        except BrokenPipeError:
            pass  # the reader is gone: the statement failed, and says why
        except BaseException as exc:  # re-raised by finish(): a short file must not load
            self.error = exc

    def _write(self) -> None:
        with open(self.path, "w", encoding="utf-8") as handle:
            for start in range(0, len(self.rows), _BATCH):
                batch = self.rows[start : start + _BATCH]
                fields = [
                    _tsv_column(kind, _column_values(batch, column))
                    for column, kind in zip(self.columns, self.kinds, strict=True)
                ]
                handle.write("\n".join(map("\t".join, zip(*fields, strict=True))) + "\n")

    def finish(self) -> None:
        """Wait for the writer; one still waiting for a reader (the statement failed before
        reading) is let through. Raises what the writer raised."""
        if self.thread is not None:
            while self.thread.is_alive():
                # A reader of our own lets a waiting open() through; closing it ends the writes.
                with contextlib.suppress(OSError):
                    os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
                self.thread.join(0.05)
        if self.error is not None:
            raise StoreError(f"could not write the rows to load: {self.error}") from self.error


def _column_values(rows: list[Row], column: str) -> list[Any]:
    """One column of ``rows`` (a C loop where every row has it, as validated rows do)."""
    try:
        return list(map(itemgetter(column), rows))
    except KeyError:
        return [row.get(column) for row in rows]


def _tsv_column(kind: str, values: list[Any]) -> list[str]:
    """A column's LOAD DATA fields: what :func:`_tsv_text` or ``_TSV`` gives each value, in C
    loops where they give the same (text with nothing to escape, nearly all of it)."""
    nulls = None in values
    if kind == "string":
        try:
            text = "".join(filter(None, values))
            plain = not any(c in text for c in "\\\t\n\r")
        except TypeError:  # other values than text
            plain = False
        if plain:
            return ["\\N" if v is None else v for v in values] if nulls else values
    if not nulls and (kind in ("int", "float") or set(map(type, values)) == {dt.date}):
        return list(map(str, values))  # what _TSV and _tsv_text write for these
    write = _TSV.get(kind, _tsv_text)
    return ["\\N" if v is None else write(v) for v in values]


def _tsv_text(value: Any) -> str:
    text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


# Field writers for LOAD DATA (NULL is written as \N before these are called).
_TSV: dict[str, Callable[[Any], str]] = {
    "bool": lambda v: "1" if v else "0",
    "int": str,
    "float": str,  # the shortest text that reads back as the same double
}


def _conflicts(cur: Any) -> dict[str, list[str]]:
    cur.execute("SELECT `table` FROM dolt_conflicts")
    found: dict[str, list[str]] = {}
    for (table,) in sorted(cur.fetchall()):
        cur.execute(f"SELECT * FROM {_q('dolt_conflicts_' + str(table))}")
        names = list(cur.column_names)
        rows = cur.fetchall()
        cur.execute(f"SHOW COLUMNS FROM {_q(str(table))}")
        primary = [c[0] for c in cur.fetchall() if c[3] == "PRI"]

        def key(row: Any, names: list[str] = names, primary: list[str] = primary) -> str:
            # A side that deleted the row has NULLs there: take the key from a side that has it.
            for side in ("our_", "their_", "base_"):
                values = [row[names.index(side + k)] for k in primary if side + k in names]
                if values and all(v is not None for v in values):
                    return "/".join(str(v) for v in values)
            return "?"

        found[str(table)] = sorted(key(row) for row in rows)
    return found


def _side(row: Row, prefix: str, schema: TableSchema) -> Row:
    return {c: row.get(prefix + c) for c in schema.columns}


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, mysql.connector.Error) and (
        exc.errno in _TRANSIENT_ERRNOS or isinstance(exc, mysql.connector.InterfaceError)
    )


def _remote_unreachable(exc: BaseException) -> bool:
    """A remote that did not answer (Dolt reports gRPC's 'Unavailable'): worth another try."""
    if not isinstance(exc, mysql.connector.Error) or _transient(exc):
        return False
    text = str(exc.msg).lower()
    return any(
        m in text
        for m in ("code = unavailable", "connection refused", "no such host", "i/o timeout")
    )


def _rpc_reason(text: str) -> str:
    """The end of a gRPC error chain ('dial tcp ...: connect: connection refused')."""
    found = re.search(r"(dial tcp [^\"]+|no such host|i/o timeout)", text)
    return found[1] if found else text.splitlines()[0][:160]


def _get_lock(cur: Any, key: str, timeout: float) -> bool:
    """GET_LOCK ``key`` within ``timeout`` seconds, asking a few seconds at a time.

    Dolt waits whole seconds (it rounds a wait up), so the wait may overrun by under a second.
    """
    deadline = time.monotonic() + timeout
    while True:
        wait = max(0.0, min(_LOCK_POLL, deadline - time.monotonic()))
        cur.execute("SELECT GET_LOCK(%s, %s)", (key, math.ceil(wait)))
        (got,) = cur.fetchone()
        cur.fetchall()
        if got == 1:
            return True
        if time.monotonic() >= deadline:
            return False


def _missing(exc: mysql.connector.Error) -> bool:
    text = str(exc.msg).lower()
    return exc.errno in _MISSING_ERRNOS or "database not found" in text or "table not found" in text


def _packable(field: Sequence[Any]) -> bool:
    """Whether a result column's values come back from JSON as mysql-connector reads them: not
    DECIMAL (a float in JSON), dates (text), ENUM (its index), SET, JSON, binary or TEXT (which
    Dolt 1.86 refuses in JSON_ARRAY)."""
    kind, flags, charset = field[1], field[7], field[8] if len(field) > 8 else None
    if kind in _PACKED_INTEGERS:
        return True
    return (
        kind in _PACKED_STRINGS
        and not flags & (FieldFlag.ENUM | FieldFlag.SET)
        and charset != _BINARY_CHARSET
    )


def _statement(cur: Any) -> str | None:
    try:
        return None if cur is None else cur.statement  # type: ignore[no-any-return]
    except Exception:  # a cursor that never ran a statement
        return None


def statement_kind(statement: str | None) -> str:
    """What a statement does, for an error message: ``CREATE DATABASE `training```, ``CALL
    DOLT_MERGE``, ``INSERT INTO `t```. Never its values (they may be data or secrets)."""
    found = _STATEMENT_KIND.match(statement or "")
    if not found:
        return "a statement"
    words = [w for w in found[1].split() if w.upper() not in ("IF", "NOT", "EXISTS")]
    return " ".join(
        w.upper() if i == 0 or w.upper() in _KEYWORDS else w for i, w in enumerate(words)
    )


_KEYWORDS = {"TABLE", "DATABASE", "DATA", "LOCAL", "INFILE", "INTO", "GLOBAL"}


def _translate(
    exc: mysql.connector.Error, doing: str = "", *, statement: str | None = None, user: str = ""
) -> Exception:
    where = f" while {doing}" if doing else ""
    if _transient(exc):
        return ServiceError(
            f"lost the connection to Dolt{where}: {exc.msg}",
            hint="check 'platform-kit services status'",
        )
    text = str(exc.msg)
    if any(m in text.lower() for m in ("branch not found", "invalid ref spec", "commit not found")):
        return RefNotFoundError(f"Dolt{where}: {text}")
    if _REFUSED.search(text):
        kind = statement_kind(statement)
        who = f" for user {user!r}" if user else ""
        branch = _BRANCH_REFUSED.search(text)
        if branch:
            return StoreError(
                f"Dolt refused {kind} on branch {branch[1]!r}{who}{where}",
                hint="dolt_branch_control lets this user write other branches only (sync writes "
                f"sheets/*, the merge user writes main); {USERS_HINT}",
            )
        return StoreError(
            f"Dolt refused {kind}{who}{where}",
            hint=f"grant it to this user, or {USERS_HINT}",
        )
    return StoreError(f"Dolt refused{where}: {text}")
