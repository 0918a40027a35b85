"""platform-kit model list | model promote NAME VERSION | model rollback NAME [--to-version N]"""

from __future__ import annotations

import argparse

from platform_kit.cli.common import emit, note, project_of, stdout, table
from platform_kit.config import Config
from platform_kit.endpoints import Service
from platform_kit.project import Needs
from platform_kit.tracking.registry import ModelSummary
from platform_kit.tracking.tags import DOLT_COMMIT

READ = Needs({Service.MLFLOW})
WRITE = Needs({Service.MLFLOW}, start_local=True)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "model", parents=[parent], help="list models, move the production alias"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[parent], help="each model's production version")
    listing.set_defaults(needs=READ)
    promote = actions.add_parser(
        "promote", parents=[parent], help="give a version the production alias"
    )
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="VERSION", type=int)
    promote.set_defaults(needs=WRITE)
    rollback = actions.add_parser("rollback", parents=[parent], help="move the alias back")
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument(
        "--to-version", type=int, metavar="N", help="default: the previous production version"
    )
    rollback.set_defaults(needs=WRITE)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    project = project_of(args)
    config, registry = project.config, project.models
    if args.action == "list":
        models = registry.list_models()
        emit(args, {"models": [_summary_json(m) for m in models]}, lambda: _render(config, models))
        return 0
    if args.action == "promote":
        registry.promote(args.name, args.version)
        emit(
            args,
            {"name": args.name, "alias": registry.alias, "version": args.version},
            lambda: note(f"{args.name}: {registry.alias} -> v{args.version}"),
        )
        return 0
    before, after = registry.rollback(args.name, args.to_version)
    emit(
        args,
        {"name": args.name, "alias": registry.alias, "from_version": before, "version": after},
        lambda: note(
            f"{args.name}: {registry.alias} v{before if before is not None else '-'} -> v{after}"
            " (build a release to ship it)"
        ),
    )
    return 0


def _summary_json(m: ModelSummary) -> dict[str, object]:
    prod = m.production
    return {
        "name": m.name,
        "production_version": prod.version if prod else None,
        "metrics": prod.metrics if prod else {},
        "dolt_commit": prod.tags.get(DOLT_COMMIT) if prod else None,
        "latest_version": m.latest.version if m.latest else None,
        "versions": m.versions,
    }


def _render(config: Config, models: list[ModelSummary]) -> None:
    metric = next((m.promote_if.metric for m in config.models if m.promote_if), "accuracy")
    rows = []
    for m in models:
        prod = m.production
        value = prod.metrics.get(metric) if prod else None
        rows.append(
            [
                m.name,
                f"v{prod.version}" if prod else "-",
                f"{value:.4g}" if value is not None else "",
                (prod.tags.get(DOLT_COMMIT) or "")[:12] if prod else "",
                f"v{m.latest.version}" if m.latest else "",
                m.versions,
            ]
        )
    columns = ["model", "production", metric, "dolt commit", "latest", "versions"]
    stdout.print(table(None, columns, rows))
