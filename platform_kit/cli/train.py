"""platform-kit train (--model NAME... | --shard JSON) [--ref REF] [--workers N]"""

from __future__ import annotations

import argparse

from platform_kit.cli.stub import not_implemented


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("train", parents=[parent], help="train models and log them to MLflow")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--model", action="append", metavar="NAME", help="a model to train (repeatable)"
    )
    which.add_argument("--shard", metavar="JSON", help="a shard from 'plan --format github'")
    parser.add_argument("--ref", help="Dolt ref to train on (default: the main branch)")
    parser.add_argument(
        "--workers", type=int, default=2, metavar="N", help="models trained at once"
    )
    parser.add_argument("--force", action="store_true", help="retrain even when nothing changed")
    parser.set_defaults(handler=not_implemented)
