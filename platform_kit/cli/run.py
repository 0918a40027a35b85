"""platform-kit run: the main job, locally."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from platform_kit import summary
from platform_kit.cli.common import Stages, emit, project_of, stdout, write_summary
from platform_kit.cli.train import progress_bar
from platform_kit.endpoints import Service
from platform_kit.errors import TrainingError
from platform_kit.project import Needs

if TYPE_CHECKING:  # the pipeline pulls in release (numpy, docker): loaded when run runs
    from platform_kit.pipeline import RunReport


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "run",
        parents=[parent],
        help="the main job: sync -> merge -> plan -> train -> release",
        description="Run the whole pipeline on this machine: bring services up, sync the sheets to "
        "data branches, show the diff, merge, plan, train, and build the release.",
    )
    parser.add_argument(
        "--workers", type=int, default=2, metavar="N", help="models trained at once"
    )
    parser.add_argument("--no-release", action="store_true", help="stop after training")
    parser.set_defaults(handler=run, needs=Needs({Service.DOLT, Service.MLFLOW}, start_local=True))


def run(args: argparse.Namespace) -> int:
    from platform_kit.pipeline import run_pipeline

    project = project_of(args)
    with Stages() as stages, progress_bar() as bar:
        report = run_pipeline(
            project,
            workers=args.workers,
            release=not args.no_release,
            say=stages.say,
            progress=bar,
        )
    emit(args, report.to_json(), lambda: _summary(report))
    links = summary.Links(project.mlflow_uri)
    write_summary(args, lambda: summary.run(report.to_json(), links))
    if report.failed:
        raise TrainingError(
            f"{len(report.failed)} model(s) failed to train: {', '.join(report.failed[:10])}",
            hint="the others were trained (and released); the failed ones keep their production version",
        )
    return 0


def _summary(report: RunReport) -> None:
    if report.nothing_new:
        stdout.print("Nothing new: no sheet changed and no model needed training.")
    stdout.print(f"data:     main @ {report.main_commit[:12]}")
    stdout.print(f"trained:  {', '.join(report.trained) or 'none'}")
    if report.release:
        stdout.print(f"release:  {report.release['image']}:{report.release['tag']}")
        stdout.print(f"lineage:  platform-kit lineage {report.release['tag']}")
    else:
        stdout.print(f"release:  skipped ({report.release_skipped})")
