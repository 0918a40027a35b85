"""Release decisions that need no service: the base image, and a run whose models partly fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from platform_kit import pipeline, release
from platform_kit.config import load_config
from platform_kit.errors import ConfigError, ReleaseError
from platform_kit.project import Project
from platform_kit.tracking.memory_registry import MemoryModelRegistry
from platform_kit.tracking.registry import RegistrySnapshot
from platform_kit.train import ModelResult, ModelStatus, TrainReport


class FakeEngine:
    """Only what ensure_base_image calls: which images exist, and whether a pull works."""

    def __init__(self, images: set[str], pull_works: bool) -> None:
        self.images = set(images)
        self.pull_works = pull_works
        self.pulled: list[str] = []

    def has_image(self, name: str) -> bool:
        return name in self.images

    def pull_reference(self, reference: str) -> None:
        self.pulled.append(reference)
        if not self.pull_works:
            raise ReleaseError(f"pulling {reference} failed: no such host")
        self.images.add(reference)


def base(engine: FakeEngine, image: str = "python:3.11-slim") -> str:
    return release.ensure_base_image(engine, image)  # type: ignore[arg-type]


def test_the_base_image_is_pulled_and_a_pinned_one_only_once() -> None:
    engine = FakeEngine(set(), pull_works=True)
    assert base(engine) == "python:3.11-slim" and engine.pulled == ["python:3.11-slim"]
    assert base(engine) == "python:3.11-slim" and len(engine.pulled) == 2  # a tag: pulled again
    pinned = "python:3.11-slim@sha256:" + "a" * 64
    assert base(engine, pinned) == pinned and base(engine, pinned) == pinned
    assert engine.pulled.count(pinned) == 1


def test_offline_the_engines_copy_then_the_local_base_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert base(FakeEngine({"python:3.11-slim"}, pull_works=False)) == "python:3.11-slim"
    local = FakeEngine({release.LOCAL_BASE}, pull_works=False)
    assert base(local) == release.LOCAL_BASE
    # Not root, nothing to build on: one line naming the base and what to do.
    monkeypatch.setattr(release.os, "geteuid", lambda: 1000)
    with pytest.raises(ReleaseError, match=r"cannot be pulled .*no such host.*docker login"):
        base(FakeEngine(set(), pull_works=False))


def test_require_all_is_a_validated_boolean(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text("project: p\nrelease: {image: r/x, require_all: true}\n")
    assert load_config(path).require_release().require_all is True
    path.write_text("project: p\nrelease: {image: r/x}\n")
    assert load_config(path).require_release().require_all is False
    path.write_text("project: p\nrelease: {image: r/x, require_all: maybe}\n")
    with pytest.raises(ConfigError, match="require_all"):
        load_config(path)


def _run_stubbed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    to_train: tuple[str, ...],
    report: TrainReport | None,
) -> tuple[pipeline.RunReport, dict[str, Any], list[str]]:
    """run_pipeline with sync, plan, train and build_release stubbed; build_release's kwargs."""
    (tmp_path / "platform.yaml").write_text("project: p\nrelease: {image: r/x}\n")
    config = load_config(tmp_path / "platform.yaml")

    class Store:
        def create_database(self) -> None: ...

        def resolve(self, ref: str) -> str:
            return "c" * 32

    class Plan:
        decisions: list[Any] = []

    Plan.to_train = [type("D", (), {"name": n})() for n in to_train]  # type: ignore[attr-defined]
    calls: dict[str, Any] = {}

    def fake_build(config: Any, **kwargs: Any) -> release.ReleaseResult:
        calls.update(kwargs)
        return release.ReleaseResult(
            "t" * 32, "r/x", {"ok": "2", "broken": "1"}, built=True, pushed=True
        )

    monkeypatch.setattr(pipeline, "sync", lambda config, store: type("S", (), {"sheets": []})())
    monkeypatch.setattr(pipeline, "plan_training", lambda *a, **k: Plan())
    monkeypatch.setattr(pipeline.PlanSummary, "of", lambda plan: type("P", (), {"line": str})())
    monkeypatch.setattr(pipeline, "train", lambda *a, **k: report)
    monkeypatch.setattr(pipeline, "build_release", fake_build)
    models = MemoryModelRegistry(project="p")
    project = Project(config, store=Store(), models=models, releases=object(), engine=object())  # type: ignore[arg-type]
    monkeypatch.setattr(project, "require", lambda services: None)
    project.__dict__["registry"] = object()
    project.__dict__["mlflow_uri"] = "http://mlflow"
    lines: list[str] = []
    run = pipeline.run_pipeline(project, say=lambda stage, line: lines.append(line))
    return run, calls, lines


def test_a_run_with_failed_models_still_releases_at_the_plans_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = TrainReport(
        "c" * 32,
        "main",
        [
            ModelResult("ok", ModelStatus.TRAINED, "data changed"),
            ModelResult("broken", ModelStatus.FAILED, "diverged"),
        ],
        seconds=1.0,
    )
    run, calls, lines = _run_stubbed(tmp_path, monkeypatch, ("ok", "broken"), report)
    assert run.failed == ["broken"] and run.release is not None
    assert run.release_skipped is None and calls["ref"] == "c" * 32
    assert any("1 failed model(s) keep their production version" in line for line in lines)
    assert calls["snapshot"] is None  # models trained: the release reads the registry again


def test_a_run_that_trains_nothing_releases_from_the_plans_registry_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, calls, _ = _run_stubbed(tmp_path, monkeypatch, (), None)
    assert run.training is None
    assert isinstance(calls["snapshot"], RegistrySnapshot)  # no second pair of searches
