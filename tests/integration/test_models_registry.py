"""The MLflow side of models on a real MLflow server: runs, versions, tags, the alias history."""

from __future__ import annotations

import uuid
from pathlib import Path

import mlflow
import pytest

from platform_kit.errors import UsageError
from platform_kit.plan_inputs import recorded_versions
from platform_kit.tracking.client import mlflow_client
from platform_kit.tracking.mlflow_registry import MlflowModelRegistry
from platform_kit.tracking.registry import RunRecord
from tests.conftest import Services
from training.bow import BowModel
from training.intent import train as train_intent


@pytest.fixture
def registry(services: Services) -> MlflowModelRegistry:
    project = f"reg-{uuid.uuid4().hex[:8]}"
    return MlflowModelRegistry(
        mlflow_client(services.mlflow_uri), project=project, experiment=project
    )


def new_version(registry: MlflowModelRegistry, name: str, tmp_path: Path, fp: str = "f") -> int:
    out = tmp_path / uuid.uuid4().hex / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "x.txt").write_text("x")
    tags = {"data.fingerprint": fp, "trainer.id": "t:x", "params.hash": "p", "model.name": name}
    run_id, uri = registry.log_run(RunRecord(name, tags, {"lr": 0.1}, {"accuracy": 0.9}, out))
    return registry.register(name, run_id, f"{uri}/model", tags)


def test_version_source_is_a_servable_model(
    registry: MlflowModelRegistry, services: Services, tmp_path: Path
) -> None:
    rows = [{"text": f"refund invoice {i}", "label": "billing"} for i in range(10)] + [
        {"text": f"track parcel {i}", "label": "shipping"} for i in range(10)
    ]
    out = tmp_path / "work" / "out"
    metrics = train_intent(rows, {"epochs": 2, "buckets": 64, "dim": 4}, out)
    name = f"{registry.project}-intent"
    tags = {"data.fingerprint": "f1", "trainer.id": "training.intent:train", "params.hash": "p"}
    run_id, uri = registry.log_run(RunRecord(name, tags, {"epochs": 2}, metrics, out))
    version = registry.register(name, run_id, f"{uri}/model", tags)
    info = registry.version(name, version)
    assert info.run_id == run_id and info.tags["data.fingerprint"] == "f1"
    assert info.tags["platform_kit.project"] == registry.project
    mlflow.set_tracking_uri(services.mlflow_uri)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=info.source, dst_path=str(tmp_path / "dl")
    )
    model = BowModel.load(Path(local))
    assert model.labels == ["billing", "shipping"]
    run = registry.client.get_run(run_id)
    assert run.data.params["epochs"] == "2"
    assert run.data.metrics["accuracy"] == metrics["accuracy"]
    assert run.info.status == "FINISHED"
    recorded = recorded_versions(registry)[name]
    assert [(r.version, r.fingerprint, r.trainer) for r in recorded] == [
        (version, "f1", "training.intent:train")
    ]


def test_promote_rollback_and_history(registry: MlflowModelRegistry, tmp_path: Path) -> None:
    name = f"{registry.project}-m"
    v1, v2, v3 = (new_version(registry, name, tmp_path, fp=str(i)) for i in range(3))
    registry.promote(name, v1)
    registry.promote(name, v2)
    registry.promote(name, v3)
    assert registry.production(name).version == v3  # type: ignore[union-attr]
    assert registry.rollback(name) == (v3, v2)
    assert registry.production(name).version == v2  # type: ignore[union-attr]
    assert registry.rollback(name) == (v2, v1)  # previous is well defined: a stack
    with pytest.raises(UsageError, match="no previous production version"):
        registry.rollback(name)
    assert registry.rollback(name, to_version=v3) == (v1, v3)
    history = registry.alias_state(name).history
    assert [(m.version, m.action) for m in history] == [
        (v1, "promote"),
        (v2, "promote"),
        (v3, "promote"),
        (v2, "rollback"),
        (v1, "rollback"),
        (v3, "rollback"),
    ]
    [summary] = registry.list_models()
    assert summary.production is not None and summary.production.version == v3
    assert summary.production.metrics == {} or "accuracy" not in summary.production.metrics
    assert summary.versions == 3


def test_alias_moved_outside_the_kit_is_observed(
    registry: MlflowModelRegistry, tmp_path: Path
) -> None:
    name = f"{registry.project}-m"
    v1, v2 = (new_version(registry, name, tmp_path, fp=str(i)) for i in range(2))
    registry.promote(name, v1)
    registry.client.set_registered_model_alias(name, "production", str(v2))
    assert registry.rollback(name) == (v2, v1)


def test_unknown_model_or_version_is_a_usage_error(
    registry: MlflowModelRegistry, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="no registered model"):
        registry.rollback("no-such-model")
    name = f"{registry.project}-m"
    new_version(registry, name, tmp_path)
    with pytest.raises(UsageError, match="has no version 9"):
        registry.promote(name, 9)


def test_productions_reads_in_bulk_what_production_reads_one_by_one(
    registry: MlflowModelRegistry, tmp_path: Path
) -> None:
    """release's manifest (issue 17): two searches answer for every model, the same way."""
    names = [f"{registry.project}-m{i}" for i in range(3)]
    for name in names:
        new_version(registry, name, tmp_path)
        v2 = new_version(registry, name, tmp_path, fp="g")
        if name != names[2]:
            registry.promote(name, v2 if name == names[0] else 1)
    missing = f"{registry.project}-never-registered"
    bulk = registry.productions([*names, missing])
    assert list(bulk) == [*names, missing]
    assert {n: (v.version if v else None) for n, v in bulk.items()} == {
        names[0]: 2,
        names[1]: 1,
        names[2]: None,
        missing: None,
    }
    assert bulk == {n: registry.production(n) for n in [*names, missing]}
