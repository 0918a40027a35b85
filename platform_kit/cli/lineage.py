"""platform-kit lineage REF | lineage --dolt-commit HASH"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from rich.tree import Tree

from platform_kit import summary
from platform_kit.cli.common import emit, project_of, stdout, table
from platform_kit.endpoints import Service
from platform_kit.errors import PlatformKitError, UsageError
from platform_kit.lineage import Lineage, lineage, mermaid, of_manifest, releases_using
from platform_kit.project import Needs, Project


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
    parser.add_argument(
        "--format",
        choices=["tree", "json", "mermaid"],
        default="tree",
        help="mermaid: a Mermaid flowchart (sheet revisions -> Dolt commits -> model versions -> "
        "image) for Markdown, as the release summary embeds it",
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
    if args.format == "mermaid" and not args.json:
        stdout.file.write(mermaid(result))
        return 0
    args.json = args.json or args.format == "json"
    links = summary.Links(project.mlflow_uri)
    emit(args, result.to_json(), lambda: stdout.print(tree(result, links)))
    return 0


def release_summary(project: Project, result: dict[str, Any]) -> str:
    """The release summary: tag, image, the manifest's diff against the previous release, and
    the lineage graph (``release build`` writes it; ``result`` is its ``--json``)."""
    tag, image, manifest = result.get("tag"), result.get("image"), result.get("manifest") or {}
    # The release log is shared by every project on the MLflow server: this image's releases.
    recent = project.releases.all(limit=100)  # newest first; each read costs a manifest download
    previous = next((r for r in recent if r.tag != tag and r.image == image), None)
    links = summary.Links(project.mlflow_uri)
    try:
        graph: str | None = mermaid(
            of_manifest(tag, image, manifest, registry=project.models, store=project.store)
        )
    except PlatformKitError as exc:  # a summary never fails the release it describes
        graph = None
        result = {**result, "lineage_error": str(exc)}
    return summary.release(
        result,
        previous.manifest if previous else None,
        previous_tag=previous.tag if previous else None,
        mermaid=graph,
        links=links,
    )


def tree(result: Lineage, links: summary.Links | None = None) -> Tree:
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
        if links is not None and links.base:
            node.add(f"MLflow {links.version(v.name, v.version)}")
        run_node = node.add(
            f"run {v.run_id or '?'}" + (f"  {links.run(v.run_id)}" if links and links.base else "")
        )
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
