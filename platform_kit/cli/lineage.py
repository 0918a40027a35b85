"""platform-kit lineage REF | lineage --dolt-commit HASH"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from rich.tree import Tree

from platform_kit.cli.common import emit, project_of, stdout, table
from platform_kit.endpoints import Service
from platform_kit.errors import UsageError
from platform_kit.lineage import Lineage, lineage, releases_using
from platform_kit.project import Needs


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
    parser.set_defaults(handler=run, needs=Needs({Service.DOLT, Service.MLFLOW}))


def run(args: argparse.Namespace) -> int:
    if bool(args.ref) == bool(args.dolt_commit):
        raise UsageError("give either REF or --dolt-commit HASH")
    project = project_of(args)
    registry, releases = project.models, project.releases
    if args.dolt_commit:
        found = releases_using(args.dolt_commit, registry=registry, releases=releases)
        rows = [[r.tag, r.image, _date(r.created_ms), r.git_sha[:12]] for r in found]
        emit(
            args,
            {
                "dolt_commit": args.dolt_commit,
                "releases": [
                    {"tag": r.tag, "image": r.image, "git_sha": r.git_sha, "manifest": r.manifest}
                    for r in found
                ],
            },
            lambda: stdout.print(
                table(
                    f"releases with models trained on {args.dolt_commit[:12]}",
                    ["tag", "image", "created", "git"],
                    rows,
                )
            ),
        )
        return 0
    result = lineage(args.ref, registry=registry, releases=releases, store=project.store)
    emit(args, result.to_json(), lambda: stdout.print(tree(result)))
    return 0


def tree(result: Lineage) -> Tree:
    if result.release_tag:
        root = Tree(
            f"[bold]release[/] {result.release_image}:{result.release_tag}  "
            f"git {result.release_git_sha[:12] if result.release_git_sha else '?'}"
        )
    else:
        root = Tree("[bold]model versions[/]")
    for v in result.versions:
        metrics = ", ".join(f"{k}={x:.3f}" for k, x in sorted(v.metrics.items())[:2])
        node = root.add(f"[bold]{v.name}[/] v{v.version}" + (f"  ({metrics})" if metrics else ""))
        run_node = node.add(f"run {v.run_id or '?'}")
        run_node.add(f"code  git {v.git_sha[:12] or '?'}")
        if v.environment:
            run_node.add(
                "env   "
                + ", ".join(f"{k.removeprefix('env.')} {x}" for k, x in v.environment.items()),
                highlight=False,
            )
        data = run_node.add(
            f"data  dolt {v.dolt_commit[:12] or '?'} on {v.dolt_branch or '?'}, "
            f"fingerprint {v.fingerprint[:12] or '?'}"
        )
        for sync in v.syncs:
            data.add(
                f"sheet {sync.sheet} @ {sync.revision}  (source {sync.source}, "
                f"commit {sync.commit[:12]})"
            )
    return root


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else "?"
