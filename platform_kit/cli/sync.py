"""platform-kit sync [--sheet NAME]... [--branch B] [--dry-run]"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "sync",
        parents=[parent],
        help="read the sheets, validate them, commit the changes to Dolt",
        description="Read each configured sheet, validate it, and write its row-level changes as one "
        "Dolt commit on the branch sheets/<sheet> (or --branch).",
    )
    parser.add_argument(
        "--sheet", action="append", metavar="NAME", help="only this sheet (repeatable)"
    )
    parser.add_argument(
        "--branch", help="write to this branch instead of sheets/<sheet> (e.g. main)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the diff and write nothing")
    parser.set_defaults(handler=not_implemented)
