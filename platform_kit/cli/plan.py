"""platform-kit plan [--from REF] [--to REF] [--max-jobs N] [--format table|json|github]"""

from __future__ import annotations

import argparse
import sys

from platform_kit import data, env
from platform_kit.cli.common import emit, note, project_of, stdout, table
from platform_kit.endpoints import Service
from platform_kit.plan import Plan, PlanSummary, github_output, shard_plan
from platform_kit.plan_inputs import plan_training
from platform_kit.project import Needs


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "plan",
        parents=[parent],
        help="which models need training, and why",
        description="Compare each model's data fingerprint at --to with the versions in MLflow and "
        "list the models that need training. --format github writes a job matrix to $GITHUB_OUTPUT.",
    )
    parser.add_argument(
        "--from", dest="from_ref", metavar="REF", help="default: the last commit trained"
    )
    parser.add_argument("--to", dest="to_ref", metavar="REF", help="default: the main branch")
    parser.add_argument(
        "--max-jobs", type=int, default=256, metavar="N", help="matrix jobs at most (default 256)"
    )
    parser.add_argument("--format", choices=["table", "json", "github"], default="table")
    parser.add_argument("--force", action="store_true", help="train every model")
    parser.set_defaults(handler=run, needs=Needs({Service.DOLT, Service.MLFLOW}))


def run(args: argparse.Namespace) -> int:
    project = project_of(args)
    config, store = project.config, project.store
    from_ref, to_ref = args.from_ref, args.to_ref
    if config.dolt.remote is not None:  # the remote's main, at an exact commit (fetched here)
        to_ref = data.at_commit(config, store, to_ref) if to_ref else data.catch_up(config, store)
        from_ref = data.at_commit(config, store, from_ref) if from_ref else None
    plan = plan_training(
        config, store, project.models, from_ref=from_ref, to_ref=to_ref, force=args.force
    )
    shards = shard_plan(plan, args.max_jobs, force=args.force)
    summary = PlanSummary.of(plan).line()
    if args.format == "github":
        _write_github_output(github_output(shards))
        note(f"{len(plan.to_train)} to train in {len(shards)} jobs ({summary})")
        return 0
    if args.format == "json" or args.json:
        args.json = True
        emit(args, {**plan.to_json(), "shards": [s.to_json() for s in shards]})
        return 0
    _render(plan)
    note(
        f"{len(plan.to_train)} to train at {plan.to_commit[:12]} ({summary}); "
        f"read the rows of {len(plan.refingerprinted)}"
    )
    return 0


def _write_github_output(text: str) -> None:
    path = env.get(env.GITHUB_OUTPUT)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


def _render(plan: Plan) -> None:
    rows = [
        [d.name, "train" if d.train else "-", d.reason.value, d.detail]
        for d in sorted(plan.decisions, key=lambda d: (not d.train, d.name))
    ]
    stdout.print(table(None, ["model", "action", "reason", "detail"], rows))
