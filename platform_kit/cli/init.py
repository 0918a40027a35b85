"""platform-kit init [DIR]"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "init", parents=[parent], help="scaffold platform.yaml and a sample project"
    )
    parser.add_argument(
        "dir", nargs="?", default=".", help="where to create the project (default: .)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(handler=not_implemented)
