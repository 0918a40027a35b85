"""platform-kit reproduce NAME@VERSION"""

from __future__ import annotations

import argparse

from platform_kit.cli.common import emit, note, project_of, stdout
from platform_kit.endpoints import Service
from platform_kit.project import Needs
from platform_kit.reproduce import Reproduction, parse_ref, reproduce

EXIT_DIFFERS = 1


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "reproduce",
        parents=[parent],
        help="retrain a model version as recorded and say what differs",
        description="Checks out the version's Git SHA in a scratch worktree, reads its rows at "
        "the recorded Dolt commit, retrains, and compares code, data, environment and weights. "
        "Exits 1 when anything differs.",
    )
    parser.add_argument("ref", metavar="NAME@VERSION")
    parser.set_defaults(handler=run, needs=Needs({Service.DOLT, Service.MLFLOW}))


def run(args: argparse.Namespace) -> int:
    parse_ref(args.ref)  # a bad REF is named before any server is asked
    project = project_of(args)
    note(f"reproducing {args.ref}: checking out its code, reading its data, retraining...")
    result = reproduce(project.config, project.store, project.models, args.ref)
    emit(args, result.to_json(), lambda: _render(result))
    return 0 if result.exact else EXIT_DIFFERS


def _render(result: Reproduction) -> None:
    ref = f"{result.name}@{result.version}"
    how = "bit for bit" if result.deterministic else f"metrics within {result.tolerance:g}"
    stdout.print(
        f"{ref}: {result.summary()}  (git {result.git_sha[:12] or '?'}, "
        f"dolt {result.dolt_commit[:12] or '?'}, compared {how})",
        highlight=False,
    )
    for difference in result.differences:
        stdout.print(
            f"  {difference.aspect.value}: {difference.what}", highlight=False, markup=False
        )
