"""platform-kit release build [--push] | release list | release diff A B | release rollback TAG"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "release", parents=[parent], help="build, list, diff and roll back releases"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", parents=[parent], help="build the image of the production models"
    )
    build.add_argument("--alias", help="model alias to release (default: release.alias)")
    build.add_argument("--push", action="store_true", help="push the image and record the release")
    actions.add_parser("list", parents=[parent], help="releases, newest first")
    diff = actions.add_parser(
        "diff", parents=[parent], help="models that differ between two releases"
    )
    diff.add_argument("tag1", metavar="TAG1")
    diff.add_argument("tag2", metavar="TAG2")
    rollback = actions.add_parser(
        "rollback", parents=[parent], help="point production at an older image"
    )
    rollback.add_argument("tag", metavar="TAG")
    parser.set_defaults(handler=not_implemented)
