"""platform-kit model list | model promote NAME VERSION | model rollback NAME [--to-version N]"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "model", parents=[parent], help="list models, move the production alias"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[parent], help="each model's production version")
    promote = actions.add_parser(
        "promote", parents=[parent], help="give a version the production alias"
    )
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="VERSION", type=int)
    rollback = actions.add_parser("rollback", parents=[parent], help="move the alias back")
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument(
        "--to-version", type=int, metavar="N", help="default: the previous production version"
    )
    parser.set_defaults(handler=not_implemented)
