"""platform-kit lineage REF | lineage --dolt-commit HASH"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "lineage",
        parents=[parent],
        help="from a release to its models, runs, code and data",
        description="REF is an image tag, NAME@VERSION, or an MLflow run id.",
    )
    parser.add_argument("ref", nargs="?", metavar="REF")
    parser.add_argument(
        "--dolt-commit", metavar="HASH", help="which releases include data of this commit"
    )
    parser.set_defaults(handler=not_implemented)
