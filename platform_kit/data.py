"""Data review: row-level diffs between refs, merging data branches, and the commit log; with a
Dolt remote (``dolt.remote``), pushing data branches for review there and pulling its main."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from platform_kit.config import Config, DoltRemote
from platform_kit.errors import RefNotFoundError, RemoteError, UsageError
from platform_kit.store.base import Commit, MergeResult, Store, TableDiff

SHEET_BRANCH_PREFIX = "sheets/"


@dataclass(frozen=True)
class BranchDiff:
    from_ref: str
    to_ref: str
    from_commit: str
    to_commit: str
    tables: list[TableDiff]


def diff(
    config: Config,
    store: Store,
    from_ref: str | None = None,
    to_ref: str | None = None,
    tables: Sequence[str] | None = None,
) -> list[BranchDiff]:
    """Row-level diffs. With no TO, every data branch (``sheets/*``) against FROM (main)."""
    base = from_ref or config.dolt.main_branch
    if to_ref:
        targets = [to_ref]
    else:
        targets = sorted(b for b in store.branches() if b.startswith(SHEET_BRANCH_PREFIX))
    out = []
    for target in targets:
        a, b = store.resolve(base), store.resolve(target)
        wanted = list(tables) if tables else _own_tables(config, target)
        out.append(BranchDiff(base, target, a, b, store.diff(a, b, wanted)))
    return out


def _own_tables(config: Config, branch: str) -> list[str] | None:
    """A data branch is reviewed on its own sheet's table: other tables may lag behind main."""
    if branch.startswith(SHEET_BRANCH_PREFIX):
        name = branch[len(SHEET_BRANCH_PREFIX) :]
        for sheet in config.sheets:
            if sheet.name == name:
                return [sheet.table]
    return None


def merge(config: Config, store: Store, branch: str, into: str | None = None) -> MergeResult:
    """Merge a data branch into main (or ``into``); conflicts leave the target untouched."""
    target = into or config.dolt.main_branch
    return store.merge(branch, target, f"merge {branch} into {target}")


def log(config: Config, store: Store, ref: str | None = None, limit: int = 20) -> list[Commit]:
    return store.log(ref or config.dolt.main_branch, limit=limit)


# ---------------------------------------------------------------------------- the remote


@dataclass(frozen=True)
class Pulled:
    branch: str
    before: str | None  # None: the branch did not exist here
    after: str
    remote: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class Pushed:
    branch: str
    commit: str
    remote: str
    pull_request: str | None  # where to open its pull request; None: the remote has no pages


def require_remote(config: Config) -> DoltRemote:
    """``dolt.remote``.

    Raises:
        UsageError: platform.yaml names none.
    """
    if config.dolt.remote is None:
        raise UsageError(
            f"{config.path}: dolt.remote is not set",
            hint="set it to the DoltHub, DoltLab or remotesapi URL of the database",
        )
    return config.dolt.remote


def pull(config: Config, store: Store, branch: str | None = None) -> Pulled:
    """Bring ``branch`` (main) up to the remote's head of it, fast-forward only.

    Raises:
        UsageError: no dolt.remote.
        RemoteError: the branches diverged (nothing moved), or the remote refused.
        ServiceError: the remote cannot be reached, after retries.
    """
    remote = require_remote(config)
    target = branch or config.dolt.main_branch
    before = store.branches().get(target)
    after = store.pull(target)
    return Pulled(target, before, after, remote.url)


def push(config: Config, store: Store, branches: Sequence[str]) -> list[Pushed]:
    """Push data branches to the remote for review; each names where its pull request opens.

    Raises:
        UsageError: no dolt.remote.
        PushRejectedError: a remote branch has commits the local one lacks (nothing changed).
        RemoteError, ServiceError: as :func:`pull`.
    """
    remote = require_remote(config)
    main = config.dolt.main_branch
    return [
        Pushed(b, store.push(b), remote.url, pull_request_url(remote, b, main)) for b in branches
    ]


def to_review(config: Config, store: Store, branches: Sequence[str]) -> list[str]:
    """The data branches among ``branches`` whose sheet's table differs from main: the ones
    worth a pull request (a branch already merged, or never changed, is not)."""
    main = config.dolt.main_branch
    local = store.branches()
    out = []
    for branch in branches:
        if branch == main or branch not in local:
            continue
        own = _own_tables(config, branch)
        changed = store.changed_tables(main, branch)
        if any(t in changed for t in own) if own is not None else changed:
            out.append(branch)
    return sorted(out)


def pull_request_url(remote: DoltRemote, branch: str, main: str) -> str | None:
    template = remote.pull_request_url
    if template is None:
        return None
    return template.replace("{branch}", quote(branch, safe="")).replace(
        "{main}", quote(main, safe="")
    )


def catch_up(config: Config, store: Store) -> str:
    """The head of main to read: with a remote, main is first brought up to the remote's head
    (so plan, train and release read the remote's main at that exact commit)."""
    main = config.dolt.main_branch
    if config.dolt.remote is None:
        return store.resolve(main)
    store.create_database()  # a first run clones
    return store.pull(main)


def catch_up_branches(config: Config, store: Store, sheets: Sequence[str] | None = None) -> None:
    """Fast-forward the data branches (of ``sheets``, default all) to the remote's, where it has
    commits they lack (a reviewer's fix on the branch): the sync then writes on top, and its
    push is a fast-forward. Diverged branches stay as they are; their push says so."""
    heads = store.fetch()
    names = sheets or [s.name for s in config.sheets]
    for name in names:
        branch = f"{SHEET_BRANCH_PREFIX}{name}"
        if branch in heads:
            try:
                store.pull(branch)
            except RemoteError:
                continue


def at_commit(config: Config, store: Store, ref: str) -> str:
    """``ref`` resolved to a commit; with a remote, one not here yet (a head announced by the
    webhook) is fetched first.

    Raises:
        RefNotFoundError: neither here nor on the remote.
    """
    try:
        return store.resolve(ref)
    except RefNotFoundError:
        if config.dolt.remote is None:
            raise
    store.create_database()
    heads = store.fetch()
    return heads.get(ref) or store.resolve(ref)
