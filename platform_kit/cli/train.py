"""platform-kit train (--model NAME... | --shard JSON) [--ref REF] [--workers N]"""

from __future__ import annotations

import argparse
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from platform_kit import data
from platform_kit.cli.common import emit, note, project_of, stderr, stdout, table
from platform_kit.endpoints import Service
from platform_kit.errors import TrainingError, UsageError
from platform_kit.plan import Shard
from platform_kit.project import Needs
from platform_kit.train import ModelResult, ModelStatus, TrainReport, train
from platform_kit.train import Progress as TrainProgress


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
    parser.set_defaults(handler=run, needs=Needs({Service.DOLT, Service.MLFLOW}, start_local=True))


def run(args: argparse.Namespace) -> int:
    shard = Shard.from_json(args.shard) if args.shard else None
    if shard is not None and args.ref:
        raise UsageError("--ref cannot be used with --shard (a shard names its own commit)")
    project = project_of(args)
    ref = args.ref
    if project.config.dolt.remote is not None:  # the commit to train on, fetched if not here
        config, store = project.config, project.store
        if shard is not None:
            data.at_commit(config, store, shard.ref)
        else:
            ref = data.at_commit(config, store, ref) if ref else data.catch_up(config, store)
    with progress_bar() as progress:
        report = train(
            project.config,
            project.store,
            project.models,
            names=args.model,
            shard=shard,
            ref=ref,
            workers=args.workers,
            force=args.force,
            progress=progress,
        )
    emit(args, report.to_json(), lambda: _render(report))
    if report.failed:
        names = ", ".join(r.name for r in report.failed[:10])
        more = " ..." if len(report.failed) > 10 else ""
        raise TrainingError(
            f"{len(report.failed)} of {len(report.results)} models failed: {names}{more}",
            hint="the others were trained and recorded; see the reasons above or with --json",
        )
    return 0


class _Bar(TrainProgress):
    """A rich progress bar on stderr for people; one line per model where stderr is no terminal."""

    def __init__(self) -> None:
        self.live = stderr.is_terminal
        self.bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            console=stderr,
            disable=not self.live,
        )
        self.task = self.bar.add_task("train", total=None, last="")

    def __enter__(self) -> _Bar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def start(self, total: int) -> None:
        self.bar.update(self.task, total=total)

    def done(self, result: ModelResult) -> None:
        self.bar.update(self.task, advance=1, last=f"{result.name}: {result.status}")
        if not self.live:
            note(f"{result.status:8} {result.name}: {_what(result)}")


def progress_bar() -> _Bar:
    return _Bar()


def _what(result: ModelResult) -> str:
    if result.status is ModelStatus.FAILED:
        return result.reason
    if result.version is not None:
        return f"v{result.version} ({result.promotion}); {result.reason}"
    return result.reason


def _render(report: TrainReport) -> None:
    rows = []
    for r in report.results:
        metric = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items())[:3])
        rows.append(
            [
                r.name,
                r.status,
                f"v{r.version}" if r.version is not None else "",
                "yes" if r.promoted else "",
                metric,
                r.reason if r.status is not ModelStatus.TRAINED else (r.promotion or r.reason),
            ]
        )
    stdout.print(table(None, ["model", "status", "version", "promoted", "metrics", "why"], rows))
    note(
        f"{report.count(ModelStatus.TRAINED)} trained, "
        f"{report.count(ModelStatus.SKIPPED)} skipped, "
        f"{report.count(ModelStatus.FAILED)} failed at {report.commit[:12]} ({report.branch}) "
        f"in {report.seconds:.1f}s"
    )
