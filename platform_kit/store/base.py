"""The data store interface: a versioned SQL database with branches, diffs and merges.

:class:`Store` is the one narrow interface the rest of the kit uses to reach Dolt. Public methods
validate their arguments and translate backend errors into :mod:`platform_kit.errors`; backends
implement the ``_private`` hooks. Refs are branch names, commit hashes or tags; every read
resolves its ref to a full commit hash first so callers can record exactly what they read.
"""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from platform_kit.config import DoltRemote
from platform_kit.errors import RemoteError, ServiceError, StoreError
from platform_kit.sql import is_identifier

Row = dict[str, Any]
Key = tuple[Any, ...]

_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
# Lock names and claim keys: printable, no quotes or whitespace; the kit builds them from
# branch names, commit hashes and workflow names.
_TOKEN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]*$")
MAX_LOCK_NAME = 200
MAX_CLAIM_KEY = 255  # the VARCHAR width of platform_kit.claims.key
# Tags named so record what a sync read (platform_kit.sync.sync_tag); pushes carry them.
SYNC_TAGS = "sync/"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Commit:
    hash: str
    author: str
    date: datetime
    message: str


@dataclass(frozen=True)
class TableSchema:
    columns: Mapping[
        str, str
    ]  # column -> kit type (string, int, float, bool, date, datetime, json)
    primary_key: tuple[str, ...]


@dataclass
class ChangeSet:
    """Row-level changes to one table. Rows carry every column; deletes carry key tuples."""

    table: str
    schema: TableSchema  # the schema after the change (creates the table when it is missing)
    inserts: list[Row] = field(default_factory=list)
    updates: list[Row] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)
    add_columns: Mapping[str, str] = field(default_factory=dict)  # new columns, added first

    @property
    def empty(self) -> bool:
        return not (self.inserts or self.updates or self.deletes or self.add_columns)


@dataclass(frozen=True)
class RowChange:
    key: Key
    old: Row | None  # None for an added row
    new: Row | None  # None for a deleted row


@dataclass
class TableDiff:
    table: str
    added: list[RowChange] = field(default_factory=list)
    modified: list[RowChange] = field(default_factory=list)
    deleted: list[RowChange] = field(default_factory=list)

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.added), len(self.modified), len(self.deleted)


@dataclass(frozen=True)
class MergeResult:
    commit: str  # the head of the target branch after the merge
    fast_forward: bool
    changed: bool  # False when the branch had nothing new


class Store(ABC):
    """A versioned SQL database (Dolt). Construct backends with their connection settings."""

    database: str
    remote: DoltRemote | None = None  # the remote this database is a clone of (dolt.remote)

    # -- databases and branches

    def create_database(self) -> None:
        """Create the database (with an initial commit on the main branch) if it is missing.

        With a remote: clone it instead, and make sure an existing database has it as origin.

        Raises:
            RemoteError, ServiceError: the remote refused the clone, or cannot be reached.
        """
        self._create_database()

    def branches(self) -> dict[str, str]:
        """Every branch name -> its head commit hash."""
        return self._branches()

    def create_branch(self, name: str, start_point: str) -> str:
        """Create ``name`` at ``start_point`` (a ref); returns its head. Existing: left as is."""
        check_branch(name)
        return self._create_branch(name, start_point)

    def resolve(self, ref: str) -> str:
        """The full commit hash a branch, tag, full hash, ``HEAD`` (the main branch) or an
        ancestor of one (``main~2``, ``main^``) points to. Short hashes are not refs in Dolt.

        Raises:
            RefNotFoundError: no such ref.
        """
        return self._resolve(ref)

    # -- reading

    def tables(self, ref: str) -> list[str]:
        return self._tables(ref)

    def schema(self, table: str, ref: str) -> TableSchema | None:
        """The table's columns and primary key at ``ref``, or None when it does not exist there."""
        check_identifier(table)
        return self._schema(table, ref)

    def read_table(self, table: str, ref: str) -> list[Row]:
        """Every row of ``table`` at ``ref``, ordered by primary key."""
        check_identifier(table)
        return self._read_table(table, ref)

    def query(self, sql: str, params: Mapping[str, Any] | None, ref: str) -> list[Row]:
        """Run a read-only query against the database as of ``ref`` (values as parameters)."""
        return self._query(sql, dict(params or {}), ref)

    def query_groups(
        self, sql: str, params: Mapping[str, Any] | None, ref: str, column: str
    ) -> list[tuple[Any, list[Row]]]:
        """:meth:`query`'s rows grouped by their value in ``column``, which is dropped from them:
        one ``(value, rows)`` pair per distinct value, each group's rows in the query's order."""
        return self._query_groups(sql, dict(params or {}), ref, column)

    # -- writing

    def commit_changes(
        self,
        branch: str,
        changes: Sequence[ChangeSet],
        message: str,
        *,
        expected_head: str | None = None,
    ) -> str | None:
        """Apply ``changes`` to ``branch`` in ONE transaction and commit them.

        Args:
            expected_head: when given, fail instead of writing if the branch moved since.

        Returns:
            The new commit hash, or None when there was nothing to change (no commit made): no
            changes, or rows written exactly as they already were.

        Raises:
            StoreError: the write failed; the branch head is unchanged.
        """
        check_branch(branch)
        for change in changes:
            check_identifier(change.table)
            for column in change.schema.columns:
                check_identifier(column)
        if all(c.empty for c in changes):
            return None
        return self._commit_changes(branch, changes, message, expected_head)

    def merge(self, branch: str, into: str, message: str | None = None) -> MergeResult:
        """Merge ``branch`` into ``into``.

        Raises:
            MergeConflictError: with the conflicting keys per table; ``into`` is left untouched.
        """
        check_branch(branch)
        check_branch(into)
        return self._merge(branch, into, message)

    # -- history

    def diff(
        self, from_ref: str, to_ref: str, tables: Sequence[str] | None = None
    ) -> list[TableDiff]:
        """Row-level differences per table between two refs (only tables that changed)."""
        return self._diff(from_ref, to_ref, tables)

    def changed_tables(self, from_ref: str, to_ref: str) -> list[str]:
        """Names of the tables whose data or schema differ between two refs (cheap)."""
        return self._changed_tables(from_ref, to_ref)

    def log(self, ref: str, limit: int = 50) -> list[Commit]:
        """Commits reachable from ``ref``, newest first."""
        return self._log(ref, limit)

    # -- coordination between processes and machines

    def lock(self, name: str, timeout: float = 600.0) -> AbstractContextManager[None]:
        """A named lock held, while the ``with`` block runs, against every other holder.

        Dolt: ``GET_LOCK`` on a connection of its own, so it excludes other processes and
        machines that use the same server; the lock is released when the block ends or the
        holder's connection drops (a killed holder never leaves it stuck). Not re-entrant: a
        second ``lock(name)`` in the same process waits like any other holder.

        Raises:
            StoreError: the lock was still held by another after ``timeout`` seconds.
        """
        check_token(name, "lock name", MAX_LOCK_NAME)
        if not (timeout >= 0 and math.isfinite(timeout)):
            raise StoreError(f"lock {name!r}: timeout must be a number of seconds >= 0")
        return self._lock(name, float(timeout))

    def claim(self, key: str) -> bool:
        """Record ``key`` once, for good: True for the first caller ever, False afterwards.

        Atomic across processes and machines sharing the server (a primary key in the kit's
        bookkeeping database ``platform_kit``, which no commit or branch touches).

        Raises:
            StoreError: the bookkeeping table is missing and this user may not create it.
        """
        check_token(key, "claim key", MAX_CLAIM_KEY)
        return self._claim(key)

    # -- tags: a named pointer at a commit with a note (sync records what it read, issue 17)

    def set_tag(self, name: str, commit: str, note: str) -> None:
        """Point tag ``name`` at ``commit`` with ``note``, moving the tag if it exists."""
        check_branch(name)
        self._set_tag(name, self.resolve(commit), note)

    def tag(self, name: str, *, first_line: bool = False) -> tuple[str, str] | None:
        """(commit, note) of tag ``name``; None when there is no such tag.

        ``first_line``: the note's first line only (a long note need not travel to be told).
        """
        check_branch(name)
        return self._tag(name, first_line)

    # -- the remote (DoltHub, DoltLab, a sql-server's remotesapi): a clone kept in step

    def fetch(self) -> dict[str, str]:
        """Fetch every branch of the remote (no local branch moves).

        Returns:
            The remote's branch names (``main``, ``sheets/x``) -> their head commits, now also
            readable here by hash.

        Raises:
            RemoteError: no remote is configured, or it refused (credentials, no such database).
            ServiceError: the remote cannot be reached, after retries.
        """
        return self._fetch(self._require_remote())

    def push(self, branch: str) -> str:
        """Push ``branch`` to the remote's branch of the same name; returns the head pushed.

        The sync tags (:data:`SYNC_TAGS`) that point into the pushed history go with it, so a
        fresh clone (clone, fetch and pull bring tags) skips a sheet that did not change. A
        tag that does not get there is only a warning: it is a shortcut, the branch is pushed.

        Raises:
            PushRejectedError: the remote's branch has commits this one lacks (not a
                fast-forward); neither side changed.
            RemoteError, ServiceError: as :meth:`fetch`.
        """
        check_branch(branch)
        remote = self._require_remote()
        head = self._push(remote, branch)
        try:
            tags = self._tags_within(SYNC_TAGS, head)
            if tags:
                self._push_tags(remote, tags)
        except (StoreError, ServiceError) as exc:
            log.warning(
                "could not push the sync tags of %s (a fresh clone reads it all): %s", branch, exc
            )
        return head

    def pull(self, branch: str) -> str:
        """Fetch, then fast-forward ``branch`` to the remote's head of it (creating it when it is
        missing here); a branch that is ahead of the remote stays as it is. Returns its head.

        Raises:
            RemoteError: the branches diverged (each has commits the other lacks): nothing moved.
            ServiceError: as :meth:`fetch`.
        """
        check_branch(branch)
        return self._pull(self._require_remote(), branch)

    def _require_remote(self) -> DoltRemote:
        if self.remote is None:
            raise RemoteError(
                f"Dolt database {self.database!r} has no remote",
                hint="set dolt.remote in platform.yaml (a DoltHub, DoltLab or remotesapi URL)",
            )
        return self.remote

    # -- hooks for backends

    @abstractmethod
    def _create_database(self) -> None: ...
    @abstractmethod
    def _branches(self) -> dict[str, str]: ...
    @abstractmethod
    def _create_branch(self, name: str, start_point: str) -> str: ...
    @abstractmethod
    def _resolve(self, ref: str) -> str: ...
    @abstractmethod
    def _tables(self, ref: str) -> list[str]: ...
    @abstractmethod
    def _schema(self, table: str, ref: str) -> TableSchema | None: ...
    @abstractmethod
    def _read_table(self, table: str, ref: str) -> list[Row]: ...
    @abstractmethod
    def _query(self, sql: str, params: dict[str, Any], ref: str) -> list[Row]: ...

    def _query_groups(  # a backend may group in the database instead (DoltStore does)
        self, sql: str, params: dict[str, Any], ref: str, column: str
    ) -> list[tuple[Any, list[Row]]]:
        groups: dict[Any, list[Row]] = {}
        for row in self._query(sql, params, ref):
            groups.setdefault(row.pop(column), []).append(row)
        return list(groups.items())

    @abstractmethod
    def _commit_changes(
        self, branch: str, changes: Sequence[ChangeSet], message: str, expected_head: str | None
    ) -> str | None: ...
    @abstractmethod
    def _merge(self, branch: str, into: str, message: str | None) -> MergeResult: ...
    @abstractmethod
    def _diff(
        self, from_ref: str, to_ref: str, tables: Sequence[str] | None
    ) -> list[TableDiff]: ...
    @abstractmethod
    def _changed_tables(self, from_ref: str, to_ref: str) -> list[str]: ...
    @abstractmethod
    def _log(self, ref: str, limit: int) -> list[Commit]: ...
    @abstractmethod
    def _lock(self, name: str, timeout: float) -> AbstractContextManager[None]: ...
    @abstractmethod
    def _claim(self, key: str) -> bool: ...
    @abstractmethod
    def _set_tag(self, name: str, commit: str, note: str) -> None: ...
    @abstractmethod
    def _tag(self, name: str, first_line: bool) -> tuple[str, str] | None: ...
    @abstractmethod
    def _tags_within(self, prefix: str, head: str) -> list[str]:
        """Names of the tags starting with ``prefix`` that point at ``head`` or an ancestor."""

    @abstractmethod
    def _push_tags(self, remote: DoltRemote, names: Sequence[str]) -> None: ...
    @abstractmethod
    def _fetch(self, remote: DoltRemote) -> dict[str, str]: ...
    @abstractmethod
    def _push(self, remote: DoltRemote, branch: str) -> str: ...
    @abstractmethod
    def _pull(self, remote: DoltRemote, branch: str) -> str: ...


def check_identifier(name: str) -> str:
    if not is_identifier(name):
        raise StoreError(f"{name!r} is not a safe SQL identifier (letters, digits and _ only)")
    return name


def check_branch(name: str) -> str:
    if not _BRANCH.match(name) or ".." in name:
        raise StoreError(f"{name!r} is not a valid branch name")
    return name


def check_token(value: str, what: str, max_length: int) -> str:
    if not _TOKEN.match(value) or len(value) > max_length:
        raise StoreError(
            f"{value!r} is not a valid {what} (at most {max_length} letters, digits and "
            "_ . : / @ + = -, not starting with a symbol)"
        )
    return value
