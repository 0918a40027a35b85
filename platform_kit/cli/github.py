"""platform-kit github dispatch WORKFLOW [--input K=V]... | github watch [--once]"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("github", parents=[parent], help="trigger workflows, watch Dolt main")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    dispatch = actions.add_parser("dispatch", parents=[parent], help="workflow_dispatch a workflow")
    dispatch.add_argument("workflow", metavar="WORKFLOW", help="file name, e.g. pipeline.yml")
    dispatch.add_argument("--ref", default="main", help="git ref to run on (default: main)")
    dispatch.add_argument("--input", action="append", default=[], metavar="K=V")
    watch = actions.add_parser(
        "watch", parents=[parent], help="dispatch dolt-main-updated on new heads"
    )
    watch.add_argument("--once", action="store_true", help="check once and exit")
    watch.add_argument(
        "--interval", type=float, default=60.0, metavar="S", help="seconds between polls"
    )
    parser.set_defaults(handler=not_implemented)
