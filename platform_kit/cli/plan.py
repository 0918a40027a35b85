"""platform-kit plan [--from REF] [--to REF] [--max-jobs N] [--format table|json|github]"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "plan",
        parents=[parent],
        help="which models need training, and why",
        description="Compare each model's data fingerprint at --to with the versions in MLflow and "
        "list the models that need training. --format github writes a job matrix to $GITHUB_OUTPUT.",
    )
    parser.add_argument(
        "--from", dest="from_ref", metavar="REF", help="default: the last commit trained"
    )
    parser.add_argument("--to", dest="to_ref", metavar="REF", help="default: the main branch")
    parser.add_argument(
        "--max-jobs", type=int, default=256, metavar="N", help="matrix jobs at most (default 256)"
    )
    parser.add_argument("--format", choices=["table", "json", "github"], default="table")
    parser.add_argument("--force", action="store_true", help="train every model")
    parser.set_defaults(handler=not_implemented)
