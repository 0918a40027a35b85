"""platform-kit run: the main job, locally."""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "run",
        parents=[parent],
        help="the main job: sync -> merge -> plan -> train -> release",
        description="Run the whole pipeline on this machine: bring services up, sync the sheets to a "
        "data branch, show the diff, merge, plan, train, and build the release.",
    )
    parser.add_argument(
        "--workers", type=int, default=2, metavar="N", help="models trained at once"
    )
    parser.add_argument("--no-release", action="store_true", help="stop after training")
    parser.set_defaults(handler=not_implemented)
