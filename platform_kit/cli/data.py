"""platform-kit data diff [FROM] [TO] | data merge BRANCH | data log | data pull [BRANCH]"""

from __future__ import annotations

import argparse
from typing import Any

from platform_kit import data
from platform_kit.cli.common import emit, note, project_of, stdout, table
from platform_kit.endpoints import Service
from platform_kit.project import Needs
from platform_kit.store.base import RowChange

READ = Needs({Service.DOLT})
WRITE = Needs({Service.DOLT}, start_local=True)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("data", parents=[parent], help="review data changes: diff, merge, log")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    diff = actions.add_parser(
        "diff",
        parents=[parent],
        help="row-level diff between two refs",
        description="Row-level diff per table. With no TO: every data branch (sheets/*) against FROM.",
    )
    diff.add_argument("from_ref", nargs="?", metavar="FROM", help="default: the main branch")
    diff.add_argument("to_ref", nargs="?", metavar="TO", help="default: every sheets/* branch")
    diff.add_argument("--table", action="append", help="only this table (repeatable)")
    diff.add_argument(
        "--rows", type=int, default=10, help="changed rows shown per kind (default 10)"
    )
    diff.set_defaults(needs=READ)
    merge = actions.add_parser("merge", parents=[parent], help="merge a data branch")
    merge.add_argument("branch", metavar="BRANCH")
    merge.add_argument("--into", help="target branch (default: the main branch)")
    merge.add_argument("--notify", action="store_true", help="send the dolt-main-updated dispatch")
    merge.set_defaults(needs=WRITE)
    log = actions.add_parser("log", parents=[parent], help="hash, date and message of commits")
    log.add_argument("ref", nargs="?", help="default: the main branch")
    log.add_argument("-n", "--limit", type=int, default=20)
    log.set_defaults(needs=READ)
    pull = actions.add_parser(
        "pull",
        parents=[parent],
        help="bring main up to the head of dolt.remote",
        description="Fetch dolt.remote and fast-forward BRANCH (default: the main branch) to the "
        "remote's head of it. Diverged branches are left as they are, with what to do.",
    )
    pull.add_argument("branch", nargs="?", metavar="BRANCH", help="default: the main branch")
    pull.set_defaults(needs=WRITE)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    project = project_of(args)
    config, store = project.config, project.store
    if args.action == "diff":
        diffs = data.diff(config, store, args.from_ref, args.to_ref, args.table)
        emit(args, [_diff_json(d) for d in diffs], lambda: _render_diffs(diffs, args.rows))
    elif args.action == "merge":
        result = data.merge(config, store, args.branch, args.into)
        body: dict[str, Any] = {
            "branch": args.branch,
            "into": args.into or config.dolt.main_branch,
            "commit": result.commit,
            "fast_forward": result.fast_forward,
            "changed": result.changed,
            "notified": False,
        }
        if args.notify and result.changed:
            from platform_kit.github import notify_main_updated  # type: ignore[import-not-found,unused-ignore]

            body["notified"] = notify_main_updated(config, store, result.commit) is not None
        emit(
            args,
            body,
            lambda: note(
                f"merged {args.branch} -> {body['into']} @ {result.commit[:12]}"
                + (" (fast-forward)" if result.fast_forward else "")
                if result.changed
                else f"nothing to merge: {body['into']} already has {args.branch}"
            ),
        )
    elif args.action == "pull":
        data.require_remote(config)
        store.create_database()  # a first pull clones
        pulled = data.pull(config, store, args.branch)
        emit(
            args,
            {**vars(pulled), "changed": pulled.changed},
            lambda: note(
                f"{pulled.branch}: {(pulled.before or 'none')[:12]} -> {pulled.after[:12]} "
                f"(from {pulled.remote})"
                if pulled.changed
                else f"{pulled.branch} is up to date with {pulled.remote} @ {pulled.after[:12]}"
            ),
        )
    else:
        commits = data.log(config, store, args.ref, args.limit)
        emit(
            args,
            [
                {
                    "hash": c.hash,
                    "date": c.date.isoformat(),
                    "author": c.author,
                    "message": c.message,
                }
                for c in commits
            ],
            lambda: stdout.print(
                table(
                    None,
                    ["hash", "date", "message"],
                    [
                        [c.hash[:12], c.date.strftime("%Y-%m-%d %H:%M:%S"), c.message]
                        for c in commits
                    ],
                )
            ),
        )
    return 0


def _change_json(change: RowChange) -> dict[str, Any]:
    return {"key": [str(k) for k in change.key], "old": change.old, "new": change.new}


def _diff_json(d: data.BranchDiff) -> dict[str, Any]:
    return {
        "from": d.from_ref,
        "to": d.to_ref,
        "from_commit": d.from_commit,
        "to_commit": d.to_commit,
        "tables": [
            {
                "table": t.table,
                "added": [_change_json(c) for c in t.added],
                "modified": [_change_json(c) for c in t.modified],
                "deleted": [_change_json(c) for c in t.deleted],
            }
            for t in d.tables
        ],
    }


def _render_diffs(diffs: list[data.BranchDiff], shown: int) -> None:
    if not diffs:
        stdout.print("no data branches to review")
    for d in diffs:
        stdout.print(
            f"[bold]{d.from_ref}[/] ({d.from_commit[:12]}) -> [bold]{d.to_ref}[/] "
            f"({d.to_commit[:12]})"
        )
        if not d.tables:
            stdout.print("  no differences")
        for t in d.tables:
            added, modified, deleted = t.counts
            stdout.print(f"  {t.table}: +{added} ~{modified} -{deleted}")
            rows = [["+", ", ".join(map(str, c.key)), "", _brief(c.new)] for c in t.added[:shown]]
            rows += [
                ["~", ", ".join(map(str, c.key)), _brief(c.old, c.new), _brief(c.new, c.old)]
                for c in t.modified[:shown]
            ]
            rows += [
                ["-", ", ".join(map(str, c.key)), _brief(c.old), ""] for c in t.deleted[:shown]
            ]
            if rows:
                stdout.print(table(None, ["", "key", "old", "new"], rows))


def _brief(row: dict[str, Any] | None, other: dict[str, Any] | None = None) -> str:
    """The row's values; for modified rows only the columns that changed."""
    if row is None:
        return ""
    items = [(k, v) for k, v in row.items() if other is None or other.get(k) != v]
    text = ", ".join(f"{k}={v}" for k, v in items)
    return text if len(text) <= 80 else text[:77] + "..."
