"""Data review: row-level diffs between refs, merging data branches, and the commit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from platform_kit.config import Config
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
