"""platform-kit summary train --github-run ID [--matrix JSON]: every shard's results in one table

The final job of ``pipeline.yml`` runs it. Matrix jobs cannot hand results to a later job
(a matrix job's outputs keep only one leg's values, and artifacts need GitHub's artifact
service, which act lacks), so it reads what every shard recorded in MLflow: each training run
is tagged with the GitHub run id, a failed one with its error. A planned model with no run in
this GitHub run is a failure too: its job stopped before recording it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from platform_kit import summary
from platform_kit.cli.common import emit, project_of, stdout, write_summary
from platform_kit.endpoints import Service
from platform_kit.errors import UsageError
from platform_kit.plan import Shard
from platform_kit.project import Needs
from platform_kit.tracking import tags as T
from platform_kit.tracking.registry import ModelRegistry, promoted


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "summary",
        parents=[parent],
        help="summaries across jobs (the final job of pipeline.yml)",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    training = kinds.add_parser(
        "train",
        parents=[parent],
        help="every model trained in one GitHub Actions run, failures included, in one table",
    )
    training.add_argument(
        "--github-run", required=True, metavar="ID", help="the run id ($GITHUB_RUN_ID)"
    )
    training.add_argument(
        "--matrix",
        metavar="JSON",
        default="",
        help="the plan's matrix ('plan --format github'): its models are expected, and one "
        "without a run counts as failed",
    )
    training.set_defaults(needs=Needs({Service.MLFLOW}))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    project = project_of(args)
    planned, commits = _planned(args.matrix)
    results, missing = gather(project.models, args.github_run, planned, commits)
    links = summary.Links(project.mlflow_uri)
    body = {"github_run": args.github_run, "models": results, "missing": missing}
    markdown = summary.gathered(results, missing, links, run_id=args.github_run)
    emit(args, body, lambda: stdout.print(markdown, markup=False))
    write_summary(args, lambda: markdown)
    return 0


def _planned(matrix: str) -> tuple[list[str], set[str] | None]:
    """The matrix's models, and the Dolt commits its shards train on (None: no matrix)."""
    if not matrix.strip():
        return [], None
    try:
        include = json.loads(matrix).get("include", [])
        shards = [Shard.from_json(item["shard"]) for item in include]
    except (ValueError, AttributeError, KeyError, TypeError):
        raise UsageError("--matrix is not the JSON 'plan --format github' writes") from None
    return [name for s in shards for name in s.models], {s.ref for s in shards}


def gather(
    registry: ModelRegistry,
    github_run: str,
    planned: Sequence[str],
    commits: set[str] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The latest run of each model in ``github_run`` (on one of ``commits``, when given) as
    ``train --json`` shows a model, and the planned models with none.

    The commits matter under act, where every run's id is 1 unless act is given another.
    """
    latest: dict[str, Any] = {}
    for found in registry.runs({T.GITHUB_RUN_ID: github_run}):  # newest first: reruns win
        if commits is None or found.tags.get(T.DOLT_COMMIT) in commits:
            latest.setdefault(found.name, found)
    versions = {
        v.run_id: v for infos in registry.versions(list(latest)).values() for v in infos if v.run_id
    }
    results = []
    for name, found in sorted(latest.items()):
        version = versions.get(found.run_id)
        results.append(
            {
                "name": name,
                "status": "failed" if found.failed else "trained",
                "reason": found.tags.get(T.ERROR, ""),
                "version": version.version if version else None,
                "run_id": found.run_id,
                "metrics": dict(found.metrics),
                "promoted": bool(version and promoted(version)),
                "promotion": version.tags.get(T.PROMOTION, "") if version else "",
                "seconds": None,  # the run records logging, not training, time
                "dolt_commit": found.tags.get(T.DOLT_COMMIT, ""),
            }
        )
    missing = sorted(set(planned) - set(latest))
    return results, missing
