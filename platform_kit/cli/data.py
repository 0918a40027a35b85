"""platform-kit data diff [FROM] [TO] | data merge BRANCH | data log"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("data", parents=[parent], help="review data changes: diff, merge, log")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    diff = actions.add_parser("diff", parents=[parent], help="row-level diff between two refs")
    diff.add_argument("from_ref", nargs="?", metavar="FROM", help="default: the main branch")
    diff.add_argument("to_ref", nargs="?", metavar="TO", help="default: the working branch")
    diff.add_argument("--table", action="append", help="only this table (repeatable)")
    merge = actions.add_parser("merge", parents=[parent], help="merge a data branch")
    merge.add_argument("branch", metavar="BRANCH")
    merge.add_argument("--into", help="target branch (default: the main branch)")
    merge.add_argument("--notify", action="store_true", help="send the dolt-main-updated dispatch")
    log = actions.add_parser("log", parents=[parent], help="hash, date and message of commits")
    log.add_argument("ref", nargs="?", help="default: the main branch")
    log.add_argument("-n", "--limit", type=int, default=20)
    parser.set_defaults(handler=not_implemented)
