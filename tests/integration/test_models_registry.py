"""The model registry contract, written once and run against every backend: MLflow (a real
tracking server) and the in-memory registry that unit tests use in its place.

A behaviour one backend lacks is not skipped: the memory registry lists it in
``KNOWN_DIFFERENCES`` and the test that needs it reports an expected failure (``x`` in the
summary, with the reason). Checks of MLflow itself (its stored params, downloading artifacts
through mlflow) run on the MLflow backend only, and say so.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest

from platform_kit.errors import UsageError
from platform_kit.plan_inputs import recorded_versions
from platform_kit.tracking import mlflow_registry as mlflow_registry_module
from platform_kit.tracking import registry as registry_module
from platform_kit.tracking.client import mlflow_client
from platform_kit.tracking.memory_registry import KNOWN_DIFFERENCES, MemoryModelRegistry
from platform_kit.tracking.mlflow_registry import MlflowModelRegistry
from platform_kit.tracking.registry import ModelRegistry, RunRecord
from platform_kit.tracking.rest import rest_api
from tests.conftest import Services
from training.bow import BowModel
from training.intent import train as train_intent


def mlflow_backend(request: pytest.FixtureRequest, project: str) -> ModelRegistry:
    services: Services = request.getfixturevalue("services")
    return MlflowModelRegistry(  # as Project builds it: through REST
        mlflow_client(services.mlflow_uri),
        project=project,
        experiment=project,
        rest=rest_api(services.mlflow_uri),
    )


def mlflow_client_backend(request: pytest.FixtureRequest, project: str) -> ModelRegistry:
    """Every call through MLflow's client: the kit's way under an MLFLOW_TRACKING_AUTH plugin."""
    services: Services = request.getfixturevalue("services")
    return MlflowModelRegistry(
        mlflow_client(services.mlflow_uri), project=project, experiment=project
    )


def memory_backend(request: pytest.FixtureRequest, project: str) -> ModelRegistry:
    return MemoryModelRegistry(project=project, root=request.getfixturevalue("tmp_path") / "reg")


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, str], ModelRegistry]] = {
    "mlflow": mlflow_backend,
    "mlflow-client": mlflow_client_backend,
    "memory": memory_backend,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Callable[[str], ModelRegistry]:
    """Opens a registry of a project on this backend (two calls: two clients of one server)."""
    make = BACKENDS[request.param]
    return lambda project: make(request, project)


@pytest.fixture
def registry(backend: Callable[[str], ModelRegistry]) -> ModelRegistry:
    return backend(f"reg-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def mlflow_registry(services: Services) -> MlflowModelRegistry:
    """For checks of MLflow itself (not of the registry contract)."""
    project = f"reg-{uuid.uuid4().hex[:8]}"
    return MlflowModelRegistry(
        mlflow_client(services.mlflow_uri), project=project, experiment=project
    )


def differs(registry: ModelRegistry, behaviour: str) -> None:
    """Report an expected failure where the backend lists ``behaviour`` as a known difference."""
    reason = getattr(registry, "known_differences", {}).get(behaviour)
    if reason:
        pytest.xfail(f"{type(registry).__name__} differs from MLflow ({behaviour}): {reason}")


def test_known_differences_are_pinned() -> None:
    assert set(KNOWN_DIFFERENCES) == {"shared"}
    assert not getattr(MlflowModelRegistry, "known_differences", {})


def new_version(registry: ModelRegistry, name: str, tmp_path: Path, fp: str = "f") -> int:
    out = tmp_path / uuid.uuid4().hex / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "x.txt").write_text("x")
    tags = {"data.fingerprint": fp, "trainer.id": "t:x", "params.hash": "p", "model.name": name}
    run_id, uri = registry.log_run(RunRecord(name, tags, {"lr": 0.1}, {"accuracy": 0.9}, out))
    return registry.register(name, run_id, f"{uri}/model", tags)


def trained_intent(registry: ModelRegistry, tmp_path: Path) -> tuple[str, int, dict[str, float]]:
    rows = [{"text": f"refund invoice {i}", "label": "billing"} for i in range(10)] + [
        {"text": f"track parcel {i}", "label": "shipping"} for i in range(10)
    ]
    out = tmp_path / "work" / "out"
    metrics = train_intent(rows, {"epochs": 2, "buckets": 64, "dim": 4}, out)
    name = f"{registry.project}-intent"
    tags = {"data.fingerprint": "f1", "trainer.id": "training.intent:train", "params.hash": "p"}
    run_id, uri = registry.log_run(RunRecord(name, tags, {"epochs": 2}, metrics, out))
    return name, registry.register(name, run_id, f"{uri}/model", tags), metrics


def local_copy(registry: ModelRegistry, source: str, dst: Path) -> Path:
    """A version's artifacts on disk: downloaded through mlflow, or the memory registry's copy."""
    if isinstance(registry, MlflowModelRegistry):
        mlflow.set_tracking_uri(registry.client.tracking_uri)
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst)))
    return Path(source)


def test_version_source_is_a_servable_model(registry: ModelRegistry, tmp_path: Path) -> None:
    name, version, _ = trained_intent(registry, tmp_path)
    info = registry.version(name, version)
    assert info.tags["data.fingerprint"] == "f1"
    assert info.tags["platform_kit.project"] == registry.project
    model = BowModel.load(local_copy(registry, info.source, tmp_path / "dl"))
    assert model.labels == ["billing", "shipping"]
    recorded = recorded_versions(registry.snapshot())[name]
    assert [(r.version, r.fingerprint, r.trainer) for r in recorded] == [
        (version, "f1", "training.intent:train")
    ]


def test_mlflow_records_the_runs_params_metrics_and_status(
    mlflow_registry: MlflowModelRegistry, tmp_path: Path
) -> None:
    """MLflow only: what MLflow itself stores of a run (the memory registry keeps no params)."""
    name, version, metrics = trained_intent(mlflow_registry, tmp_path)
    run_id = mlflow_registry.version(name, version).run_id
    assert run_id is not None
    run = mlflow_registry.client.get_run(run_id)
    assert run.data.params["epochs"] == "2"
    assert run.data.metrics["accuracy"] == metrics["accuracy"]
    assert run.info.status == "FINISHED"


def test_runs_are_found_by_tags_newest_first(registry: ModelRegistry, tmp_path: Path) -> None:
    name = f"{registry.project}-m"
    ok = registry.log_run(RunRecord(name, {"gh.run": "1", "model.name": name}, {}, {"a": 1.0}))
    bad = registry.log_run(RunRecord(name, {"gh.run": "1", "model.name": name}, {}, failed="boom"))
    registry.log_run(RunRecord(name, {"gh.run": "2", "model.name": name}, {}))
    found = registry.runs({"gh.run": "1"})
    assert {r.run_id for r in found} == {bad.run_id, ok.run_id}
    assert [r.start_ms for r in found] == sorted((r.start_ms for r in found), reverse=True)
    by_id = {r.run_id: r for r in found}
    assert by_id[bad.run_id].failed and not by_id[ok.run_id].failed
    assert by_id[bad.run_id].tags["error"] == "boom" and by_id[ok.run_id].metrics == {"a": 1.0}
    assert {r.name for r in found} == {name}
    assert registry.runs({"gh.run": "3"}) == []


def test_versions_are_numbered_from_1_per_model_and_once_per_run(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    a, b = f"{registry.project}-a", f"{registry.project}-b"
    assert [new_version(registry, a, tmp_path) for _ in range(2)] == [1, 2]
    assert new_version(registry, b, tmp_path) == 1
    assert sorted(registry.versions()) == [a, b]
    assert [v.version for v in registry.versions([a])[a]] == [1, 2]


def test_two_clients_of_one_registry_see_each_others_versions(
    backend: Callable[[str], ModelRegistry], tmp_path: Path
) -> None:
    project = f"reg-{uuid.uuid4().hex[:8]}"
    first, second = backend(project), backend(project)
    differs(first, "shared")
    version = new_version(first, f"{project}-m", tmp_path)
    assert second.version(f"{project}-m", version).tags["data.fingerprint"] == "f"


def test_promote_rollback_and_history(registry: ModelRegistry, tmp_path: Path) -> None:
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


def test_register_new_writes_what_register_writes_for_a_new_model(
    backend: Callable[[str], ModelRegistry], tmp_path: Path
) -> None:
    """register_new creates the model (the test that it is new) with the same version, tags,
    alias and history as register with no alias; on a model that exists it writes nothing."""
    project = f"reg-{uuid.uuid4().hex[:8]}"
    registry, other = backend(project), backend(project)  # other: a second runner
    tags = {"data.fingerprint": "f", "model.name": "m"}
    states = {}
    for name, how in ((f"{project}-a", "register"), (f"{project}-b", "register_new")):
        out = tmp_path / name / "out"
        (out / "model").mkdir(parents=True)
        (out / "model" / "x.txt").write_text("x")
        run_id, uri = registry.log_run(RunRecord(name, tags, {}, {"accuracy": 0.9}, out))
        if how == "register":
            version = registry.register(
                name,
                run_id,
                f"{uri}/model",
                tags,
                promote="first",
                state=registry.alias_state(name, missing_ok=True),
            )
        else:
            version = registry.register_new(name, run_id, f"{uri}/model", tags, promote="first")
        assert version == 1
        state = registry.alias_state(name)
        states[how] = (
            state.current,
            [(m.version, m.action, m.reason) for m in state.history],
            {
                k: v
                for k, v in registry.version(name, 1).tags.items()
                if k != "mlflow.source.run_id"
            },
        )
    assert states["register_new"] == states["register"]
    assert states["register"][:2] == (1, [(1, "promote", "first")])
    # A model another client created meanwhile: nothing is written, the caller reads its state.
    name = f"{project}-b"
    if getattr(registry, "known_differences", {}).get("shared"):
        other = registry  # the memory registry's second client would be a registry of its own
    run_id, uri = other.log_run(RunRecord(name, tags, {}, {}, None))
    assert other.register_new(name, run_id, uri, tags, promote="again") is None
    assert [v.version for v in other.versions([name])[name]] == [1]
    assert len(other.alias_state(name).history) == 1


def test_alias_moved_outside_the_kit_is_observed(registry: ModelRegistry, tmp_path: Path) -> None:
    name = f"{registry.project}-m"
    v1, v2 = (new_version(registry, name, tmp_path, fp=str(i)) for i in range(2))
    registry.promote(name, v1)
    registry._set_alias(name, "production", v2)  # the backend's own move: no history
    assert registry.rollback(name) == (v2, v1)


def test_unknown_model_or_version_is_a_usage_error(registry: ModelRegistry, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no registered model"):
        registry.rollback("no-such-model")
    name = f"{registry.project}-m"
    new_version(registry, name, tmp_path)
    with pytest.raises(UsageError, match="has no version 9"):
        registry.promote(name, 9)


def test_productions_reads_in_bulk_what_production_reads_one_by_one(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    """release's manifest (issue 17): one search answers for every model, the same way."""
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
    # From a run's snapshot, and through a snapshot when many aliases are off the newest version.
    assert registry.productions([*names, missing], registry.snapshot()) == bulk
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry_module, "_ASK_ONE_BY_ONE", 0)
        assert registry.productions([*names, missing]) == bulk


def test_a_snapshot_of_some_models_is_the_whole_one_cut_to_them(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    """A shard's train reads its own models only (MLflow: a search naming them)."""
    names = [f"{registry.project}-s{i}" for i in range(3)]
    for name in names:
        new_version(registry, name, tmp_path)
    registry.promote(names[0], 1)
    whole = registry.snapshot()
    wanted = [names[0], names[2], f"{registry.project}-never-registered"]
    part = registry.snapshot(wanted)
    assert part.versions == {n: whole.versions[n] for n in wanted if n in whole.versions}
    assert part.states == {n: whole.states[n] for n in wanted if n in whole.states}
    empty = registry.snapshot([])
    assert (empty.versions, empty.states) == ({}, {})
    with pytest.MonkeyPatch.context() as patch:  # past the names a search may carry: filtered
        patch.setattr(mlflow_registry_module, "_NAMES_IN_FILTER", 1)
        again = registry.snapshot(wanted)
    assert (again.versions, again.states) == (part.versions, part.states)
