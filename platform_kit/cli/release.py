"""platform-kit release build [--push] [--deploy] [--ref R] | list | diff A B | deploy TAG |
rollback TAG | status"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from platform_kit import data, env, summary
from platform_kit.cli.common import emit, note, project_of, stdout, table, write_summary
from platform_kit.cli.lineage import release_summary
from platform_kit.endpoints import Service
from platform_kit.project import Needs, Project

if TYPE_CHECKING:
    from platform_kit import release


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
    build.add_argument(
        "--deploy",
        action="store_true",
        help="then point <image>:production at it (implies --push)",
    )
    build.add_argument(
        "--ref", help="Dolt commit, branch or tag to resolve the models at (default: main's head)"
    )
    build.set_defaults(needs=Needs({Service.DOLT, Service.MLFLOW}, start_local=True))
    listing = actions.add_parser("list", parents=[parent], help="releases, newest first")
    listing.set_defaults(needs=Needs({Service.MLFLOW}))
    diff = actions.add_parser(
        "diff", parents=[parent], help="models that differ between two releases"
    )
    diff.add_argument("tag1", metavar="TAG1")
    diff.add_argument("tag2", metavar="TAG2")
    diff.set_defaults(needs=Needs({Service.MLFLOW}))
    # Moving production takes the release lock in Dolt, so deploys need Dolt too.
    for action, text in (
        ("deploy", "point <image>:production at a release and record the move"),
        ("rollback", "point <image>:production back at an earlier release (a deploy)"),
    ):
        move = actions.add_parser(action, parents=[parent], help=text)
        move.add_argument("tag", metavar="TAG")
        move.set_defaults(needs=Needs({Service.DOLT, Service.MLFLOW}, start_local=True))
    status = actions.add_parser(
        "status", parents=[parent], help="where production points, and its moves"
    )
    status.set_defaults(needs=Needs({Service.MLFLOW}))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    project = project_of(args)
    handlers = {
        "build": _build,
        "list": _list,
        "diff": _diff,
        "deploy": _deploy,
        "rollback": _deploy,
        "status": _status,
    }
    handlers[args.action](args, project)
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
        push=args.push or args.deploy,
        ref=args.ref,
    )
    if not result.built:
        line = f"{result.reference} is already in the registry: nothing to do"
    elif result.pushed:
        line = f"built and pushed {result.reference} ({len(result.manifest)} models), recorded"
    else:
        line = f"built {result.reference} locally ({len(result.manifest)} models); --push to release it"
    if result.left_out:
        line += f"\nleft out (no {project.config.model_alias!r} version yet): " + ", ".join(
            result.left_out
        )
    out = result.to_json()
    _github_output(tag=result.tag)  # pipeline.yml deploys the tag its release job built
    moved = _move(project, result.tag, rollback=False) if args.deploy else None
    if moved is not None:
        out["deploy"] = moved.to_json()
        line += "\n" + _moved_line(moved)
    emit(args, out, lambda: note(line))
    write_summary(args, lambda: release_summary(project, result.to_json()))
    if moved is not None:
        write_summary(args, lambda: _move_summary(moved))


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


def _github_output(**values: str) -> None:
    path = env.get(env.GITHUB_OUTPUT)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.writelines(f"{key}={value}\n" for key, value in values.items())


def _deploy(args: argparse.Namespace, project: Project) -> None:
    result = _move(project, args.tag, rollback=args.action == "rollback")
    emit(args, result.to_json(), lambda: note(_moved_line(result)))
    write_summary(args, lambda: _move_summary(result))


def _move_summary(result: release.DeployResult) -> str:
    before = result.previous_tag and f"{result.image}:{result.previous_tag}"
    return summary.deploy(
        before or result.previous_digest,
        f"{result.image}:{result.tag}",
        target=result.production,
        action="rollback" if result.rollback else "deploy",
        detail="" if result.moved else "Production already pointed there: nothing moved.",
    )


def _move(project: Project, tag: str, *, rollback: bool) -> release.DeployResult:
    from platform_kit import release  # numpy and docker: not for --help

    return release.deploy_release(
        project.config,
        tag,
        store=project.store,
        releases=project.releases,
        registry=project.registry,
        rollback=rollback,
    )


def _moved_line(result: release.DeployResult) -> str:
    if not result.moved:
        return f"{result.production} already points at {result.tag}: nothing to do"
    before = f" (was {result.previous_tag})" if result.previous_tag else ""
    return f"{result.production} now points at {result.tag}{before}, recorded"


def _status(args: argparse.Namespace, project: Project) -> None:
    from platform_kit import release  # numpy and docker: not for --help

    status = release.release_status(
        project.config, releases=project.releases, registry=project.registry
    )

    def human() -> None:
        where = status["tag"] or ("an image the kit did not build" if status["digest"] else None)
        note(f"{status['production']} -> {where or 'nothing (never deployed)'}")
        stdout.print(
            table(
                "moves of production, newest first",
                ["date", "kind", "from", "to", "by", "git sha"],
                [
                    [
                        _date(m["created_ms"]),
                        m["kind"],
                        m["from"] or "-",
                        m["tag"],
                        m["by"] or "?",
                        m["git_sha"][:12],
                    ]
                    for m in status["history"]
                ],
            )
        )

    emit(args, status, human)


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else "?"
