"""platform-kit release build [--push] | release list | release diff A B | release rollback TAG"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from platform_kit import data, summary
from platform_kit.cli.common import emit, note, project_of, stdout, table, write_summary
from platform_kit.cli.lineage import release_summary
from platform_kit.endpoints import Service
from platform_kit.project import Needs, Project


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
    build.set_defaults(needs=Needs({Service.DOLT, Service.MLFLOW}, start_local=True))
    listing = actions.add_parser("list", parents=[parent], help="releases, newest first")
    listing.set_defaults(needs=Needs({Service.MLFLOW}))
    diff = actions.add_parser(
        "diff", parents=[parent], help="models that differ between two releases"
    )
    diff.add_argument("tag1", metavar="TAG1")
    diff.add_argument("tag2", metavar="TAG2")
    diff.set_defaults(needs=Needs({Service.MLFLOW}))
    rollback = actions.add_parser(
        "rollback", parents=[parent], help="point production at an older image"
    )
    rollback.add_argument("tag", metavar="TAG")
    rollback.set_defaults(needs=Needs({Service.MLFLOW}, start_local=True))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    project = project_of(args)
    {"build": _build, "list": _list, "diff": _diff, "rollback": _rollback}[args.action](
        args, project
    )
    return 0


def _build(args: argparse.Namespace, project: Project) -> None:
    from platform_kit import release  # numpy and docker: not for --help

    if project.config.dolt.remote is not None:  # families expand at the remote's main
        data.catch_up(project.config, project.store)
    result = release.build_release(
        project.config,
        store=project.store,
        models=project.models_with_alias(args.alias),
        releases=project.releases,
        registry=project.registry,
        engine=project.get_engine,
        tracking_uri=project.mlflow_uri,
        push=args.push,
    )
    if not result.built:
        line = f"{result.reference} is already in the registry: nothing to do"
    elif result.pushed:
        line = f"built and pushed {result.reference} ({len(result.manifest)} models), recorded"
    else:
        line = f"built {result.reference} locally ({len(result.manifest)} models); --push to release it"
    emit(args, result.to_json(), lambda: note(line))
    write_summary(args, lambda: release_summary(project, result.to_json()))


def _list(args: argparse.Namespace, project: Project) -> None:
    from platform_kit import release  # numpy and docker: not for --help

    rows = release.list_releases(project.config, project.releases)

    def changed(names: list[str]) -> str:
        return ", ".join(names[:4]) + (f" +{len(names) - 4} more" if len(names) > 4 else "")

    out = table(
        None,
        ["tag", "date", "models changed", "git sha", "dolt commit"],
        [
            [
                r["tag"],
                _date(r["created_ms"]),
                changed(r["changed"]),
                r["git_sha"][:12],
                r["dolt_commit"][:12],
            ]
            for r in rows
        ],
    )
    for column in out.columns[:2]:  # whole tags: people copy them into 'release rollback'
        column.no_wrap = True
        column.min_width = 32 if column is out.columns[0] else 16
    emit(args, rows, lambda: stdout.print(out))


def _diff(args: argparse.Namespace, project: Project) -> None:
    from platform_kit import release  # numpy and docker: not for --help

    changes = release.diff_releases(project.releases, args.tag1, args.tag2)
    emit(
        args,
        {n: {"from": a, "to": b} for n, (a, b) in changes.items()},
        lambda: stdout.print(
            table(
                f"{args.tag1[:12]} -> {args.tag2[:12]}",
                ["model", "from", "to"],
                [[n, a or "-", b or "-"] for n, (a, b) in changes.items()],
            )
        ),
    )


def _rollback(args: argparse.Namespace, project: Project) -> None:
    from platform_kit import release  # numpy and docker: not for --help

    result = release.rollback_release(
        project.config,
        args.tag,
        releases=project.releases,
        registry=project.registry,
        engine=project.get_engine,
    )
    emit(
        args,
        result.to_json(),
        lambda: note(f"{result.production} now points at {result.tag}, recorded"),
    )
    write_summary(args, lambda: summary.rollback(result.to_json()))


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else "?"
