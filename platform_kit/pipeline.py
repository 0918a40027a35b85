"""The main job on one machine: services -> sync -> diff -> merge -> plan -> train -> release.

Each stage is the same library call the matching CLI command makes, so ``platform-kit run`` is
exactly what the GitHub workflows do, minus GitHub. Every stage is idempotent, so a rerun on
unchanged sheets makes no commit, trains nothing, finds its release already pushed, and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from platform_kit import data
from platform_kit.config import Config
from platform_kit.endpoints import Service
from platform_kit.errors import PlatformKitError, PushRejectedError
from platform_kit.plan import Plan, PlanSummary
from platform_kit.plan_inputs import plan_training
from platform_kit.project import Project
from platform_kit.release import build_release
from platform_kit.store.base import Store
from platform_kit.sync import sync
from platform_kit.tracking.registry import RegistrySnapshot
from platform_kit.train import ModelStatus, Progress, TrainReport, train


@dataclass
class SheetStage:
    sheet: str
    branch: str
    commit: str | None  # None: the sheet had no changes
    added: int = 0
    changed: int = 0
    deleted: int = 0
    merged: str | None = None  # the main head after merging the branch; None: nothing to merge


@dataclass
class RunReport:
    main_commit: str = ""
    sheets: list[SheetStage] = field(default_factory=list)
    plan: Plan | None = None
    training: TrainReport | None = None
    release: dict[str, Any] | None = None  # tag, image, manifest, built
    release_skipped: str | None = None

    @property
    def trained(self) -> list[str]:
        if self.training is None:
            return []
        return [r.name for r in self.training.results if r.status is ModelStatus.TRAINED]

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.training.failed] if self.training else []

    @property
    def nothing_new(self) -> bool:
        return (
            not any(s.commit or s.merged for s in self.sheets)
            and not self.trained
            and not (self.release or {}).get("built")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "main_commit": self.main_commit,
            "sheets": [vars(s) for s in self.sheets],
            "plan": self.plan.to_json() if self.plan else None,
            "trained": self.trained,
            "failed": self.failed,
            "training": self.training.to_json() if self.training else None,
            "release": self.release,
            "release_skipped": self.release_skipped,
            "nothing_new": self.nothing_new,
        }


Say = Callable[[str, str], None]  # (stage, one line for people)


def run_pipeline(
    project: Project,
    *,
    workers: int = 2,
    release: bool = True,
    say: Say = lambda stage, line: None,
    progress: Progress | None = None,
) -> RunReport:
    """Run every stage once; raise on the first stage that fails outright.

    ``project`` holds the backends (and whether local servers may be started). One model failing
    to train does not stop the run, nor the release: a model whose training failed got no new
    version, so the release keeps its previous production version (a release never includes a
    version that failed), and one never promoted is left out with a warning (refused with
    ``release.require_all``). The release resolves the models at the commit the plan trained.
    The caller ends non-zero when ``report.failed`` names models.
    """
    config = project.config
    report = RunReport()
    project.require({Service.DOLT, Service.MLFLOW})  # started, where the project may
    say("services", "Dolt and MLflow answer")
    store = project.store
    store.create_database()
    if config.dolt.remote is not None:
        head = data.catch_up(config, store)
        say("pull", f"{config.dolt.main_branch} @ {head[:12]} from {config.dolt.remote.url}")

    say("sync", f"reading {len(config.sheets)} sheet(s)")
    for result in sync(config, store).sheets:
        stage = SheetStage(
            result.sheet, result.branch, result.commit, result.added, result.changed, result.deleted
        )
        report.sheets.append(stage)
        say("sync", _sync_line(stage))

    say("merge", f"merging the data branches into {config.dolt.main_branch}")
    for stage in report.sheets:
        _merge(store, config, stage, say)
    report.main_commit = store.resolve(config.dolt.main_branch)
    if config.dolt.remote is not None:
        report.main_commit = _push_main(config, store, say)

    registry = project.models
    snapshot = registry.snapshot()  # the plan's reads; the release reuses them if none train
    report.plan = plan_training(
        config, store, registry, to_ref=report.main_commit, snapshot=snapshot
    )
    say("plan", f"{len(report.plan.to_train)} to train: {PlanSummary.of(report.plan).line()}")
    names = [d.name for d in report.plan.to_train]
    if names:
        report.training = train(
            config,
            store,
            registry,
            names=names,
            ref=report.main_commit,
            workers=workers,
            progress=progress,
            snapshot=snapshot,
        )
        say(
            "train",
            f"trained {len(report.trained)}, failed {len(report.failed)} "
            f"in {report.training.seconds:.1f}s",
        )
    else:
        say("train", "nothing to train")

    if not release:
        report.release_skipped = "--no-release"
    else:
        _release(project, report, say, snapshot if report.training is None else None)
    return report


def _sync_line(stage: SheetStage) -> str:
    if stage.commit is None:
        return f"{stage.sheet}: no changes"
    return (
        f"{stage.sheet}: +{stage.added} ~{stage.changed} -{stage.deleted} rows "
        f"-> {stage.branch} @ {stage.commit[:12]}"
    )


def _merge(store: Store, config: Config, stage: SheetStage, say: Say) -> None:
    main = config.dolt.main_branch
    if stage.branch == main or stage.branch not in store.branches():
        return
    # Only the sheet's own table: other tables on the branch may lag behind main.
    diffs = store.diff(main, stage.branch, tables=[config.sheet(stage.sheet).table])
    if not diffs:
        return
    for diff in diffs:
        added, modified, deleted = diff.counts
        say("diff", f"{stage.branch} vs {main}: {diff.table} +{added} ~{modified} -{deleted}")
    result = data.merge(config, store, stage.branch, main)  # the same commit as 'data merge'
    stage.merged = result.commit if result.changed else None
    say(
        "merge",
        f"{stage.branch} -> {main} @ {result.commit[:12]}"
        + (" (fast-forward)" if result.fast_forward else ""),
    )


def _push_main(config: Config, store: Store, say: Say) -> str:
    """Push main to the remote; trained is exactly the commit the remote then has.

    When the remote's main moved since the pull (a merged pull request), its commits are merged
    in and the push is tried once more; a conflict stops the run with both sides as they were.
    """
    main = config.dolt.main_branch
    try:
        head = store.push(main)
    except PushRejectedError:
        theirs = store.fetch()[main]
        say("push", f"the remote's {main} moved to {theirs[:12]} during the run: merging it")
        store.merge(theirs, main, f"merge the remote's {main} into {main}")
        head = store.push(main)
    say("push", f"{main} @ {head[:12]} -> {config.dolt.remote.url if config.dolt.remote else ''}")
    return head


def _release(
    project: Project, report: RunReport, say: Say, snapshot: RegistrySnapshot | None
) -> None:
    try:
        project.engine  # noqa: B018 - a run without Docker trains, then skips the release
    except PlatformKitError as exc:
        report.release_skipped = str(exc)
        say("release", f"skipped: {exc}")
        return
    result = build_release(
        project.config,
        store=project.store,
        models=project.models,
        releases=project.releases,
        registry=project.registry,
        engine=project.get_engine,
        tracking_uri=project.mlflow_uri,
        push=True,
        ref=report.main_commit,  # the plan's commit, even if main moved since
        snapshot=snapshot,
    )
    report.release = result.to_json()
    if report.failed:
        say("release", f"{len(report.failed)} failed model(s) keep their production version")
    if result.left_out:
        say("release", "left out, never in production: " + ", ".join(result.left_out[:10]))
    say(
        "release",
        ("built and pushed " if result.built else "already in the registry: ")
        + f"{result.image}:{result.tag}",
    )
