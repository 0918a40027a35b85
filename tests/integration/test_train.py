"""Plan and train on real Dolt and MLflow servers.

One project (a fresh Dolt database and MLflow experiment) per test: three customers with intent
examples, the family ``<project>-intent-{customer_id}`` (registered model names are global to an
MLflow server, so each test's are its own). The trainer runs in real worker processes.
"""

from __future__ import annotations

import json
import random
import textwrap
import uuid
from pathlib import Path
from typing import Any

import mlflow
import pytest

from platform_kit.cli import main
from platform_kit.config import Config, load_config
from platform_kit.plan import Reason, Shard, shard_plan
from platform_kit.plan_inputs import plan_training
from platform_kit.store import open_store
from platform_kit.store.base import ChangeSet, Store, TableSchema
from platform_kit.tracking.mlflow_registry import MlflowModelRegistry, registry_for
from platform_kit.train import ModelStatus, train
from tests.conftest import Services
from training.bow import BowModel

EXAMPLES = TableSchema(
    {"example_id": "string", "customer_id": "string", "text": "string", "label": "string"},
    ("example_id",),
)
CUSTOMERS = TableSchema({"customer_id": "string", "active": "bool"}, ("customer_id",))
VOCAB = {"billing": "refund invoice charge card", "shipping": "track parcel courier late"}
FAMILY = """\
  - family: intent
    for_each: "SELECT customer_id, '{project}' AS project FROM customers WHERE active"
    name: "{{project}}-intent-{{customer_id}}"
    query: "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s"
    trainer: training.intent:train
    params: {{epochs: {epochs}, lr: 0.05, buckets: 256, dim: 8}}
    promote_if: {{metric: {metric}, {bound}}}
"""
TIMEOUT = 120


def examples(customer: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(f"{customer}{start}")
    rows = []
    for i in range(start, start + n):
        label = "billing" if i % 2 else "shipping"
        words = " ".join(rng.choice(VOCAB[label].split()) for _ in range(4))
        rows.append(
            {
                "example_id": f"{customer}-{i:04d}",
                "customer_id": customer,
                "text": words,
                "label": label,
            }
        )
    return rows


def write(
    root: Path,
    services: Services,
    database: str,
    *,
    epochs: int = 3,
    metric: str = "accuracy",
    bound: str = "min: 0.6",
    extra: str = "",
) -> Config:
    body = f"""\
        project: {database}
        dolt: {{database: {database}, server: "mysql://root@{services.dolt.host}:{services.dolt.port}"}}
        mlflow: {{tracking_uri: "{services.mlflow_uri}", experiment: {database}}}
        models:
        """
    text = (
        textwrap.dedent(body)
        + FAMILY.format(project=database, epochs=epochs, metric=metric, bound=bound)
        + extra
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(text)
    return load_config(root / "platform.yaml")


@pytest.fixture
def project(services: Services, tmp_path: Path) -> tuple[Config, Store, MlflowModelRegistry]:
    database = f"t{uuid.uuid4().hex[:10]}"
    config = write(tmp_path / "proj", services, database)
    store = open_store(config)
    store.create_database()
    store.commit_changes(
        "main",
        [
            ChangeSet(
                "customers",
                CUSTOMERS,
                inserts=[{"customer_id": c, "active": True} for c in ("acme", "globex", "initech")],
            ),
            ChangeSet(
                "examples",
                EXAMPLES,
                inserts=[r for c in ("acme", "globex", "initech") for r in examples(c, 40)],
            ),
        ],
        "initial data",
    )
    return config, store, registry_for(config)


def by_name(report: Any) -> dict[str, Any]:
    return {r.name: r for r in report.results}


@pytest.mark.slow
def test_train_only_what_changed(
    project: tuple[Config, Store, MlflowModelRegistry], services: Services, tmp_path: Path
) -> None:
    config, store, registry = project
    P = f"{config.project}-"
    plan = plan_training(config, store, registry)
    assert {d.name: d.reason for d in plan.decisions} == dict.fromkeys(
        (f"{P}intent-acme", f"{P}intent-globex", f"{P}intent-initech"), Reason.NEW_MODEL
    )

    first = train(config, store, registry, workers=2)
    assert {r.name: r.status for r in first.results} == dict.fromkeys(
        (f"{P}intent-acme", f"{P}intent-globex", f"{P}intent-initech"), ModelStatus.TRAINED
    )
    head = store.resolve("main")
    assert first.commit == head and first.branch == "main"
    for result in first.results:
        assert result.version == 1 and result.promoted
        assert "no production version" in result.promotion
        state = registry.alias_state(result.name)
        assert state.current == 1
        assert [(m.version, m.action) for m in state.history] == [(1, "promote")]

    # Tags on the run and on the version.
    acme = by_name(first)[f"{P}intent-acme"]
    run = registry.client.get_run(acme.run_id)
    version = registry.version(f"{P}intent-acme", 1)
    for tags in (run.data.tags, version.tags):
        assert tags["dolt.commit"] == head and len(head) == 32
        assert tags["dolt.branch"] == "main"
        assert tags["dolt.database"] == config.dolt.database
        assert tags["model.name"] == f"{P}intent-acme"
        assert tags["data.fingerprint"] == acme.fingerprint
        assert len(tags["git.sha"]) == 40
        assert tags["mlflow.source.git.commit"] == tags["git.sha"]
    assert version.tags["promotion.state"] == "promoted"
    assert version.tags["promotion"] == "promoted: no production version yet"
    assert run.data.params["epochs"] == "3"
    assert set(run.data.metrics) >= {"accuracy", "loss", "n_train", "n_eval"}
    # The version's source is the servable model.
    mlflow.set_tracking_uri(services.mlflow_uri)
    local = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(tmp_path))
    assert BowModel.load(Path(local)).labels == ["billing", "shipping"]

    # Rerun: nothing new, every model skipped with the reason.
    again = train(config, store, registry, workers=2)
    assert {r.status for r in again.results} == {ModelStatus.SKIPPED}
    assert all("same data, trainer and params as version 1" in r.reason for r in again.results)
    assert plan_training(config, store, registry).to_train == []

    # Change one customer's rows: the plan names exactly that model, read only its rows.
    store.commit_changes(
        "main", [ChangeSet("examples", EXAMPLES, inserts=examples("globex", 6, start=100))], "more"
    )
    plan = plan_training(config, store, registry)
    assert [(d.name, d.reason) for d in plan.to_train] == [
        (f"{P}intent-globex", Reason.DATA_CHANGED)
    ]
    assert plan.refingerprinted == (f"{P}intent-globex",)
    [shard] = shard_plan(plan)
    report = train(config, store, registry, shard=Shard.from_json(shard.to_json()))
    assert [(r.name, r.status, r.version) for r in report.results] == [
        (f"{P}intent-globex", ModelStatus.TRAINED, 2)
    ]

    # Force retrains anyway, at the same inputs.
    forced = train(config, store, registry, names=[f"{P}intent-acme"], force=True)
    assert [(r.status, r.version) for r in forced.results] == [(ModelStatus.TRAINED, 2)]
    assert forced.results[0].reason.startswith("forced")


@pytest.mark.slow
def test_params_change_retrains_and_promote_if_gates(
    project: tuple[Config, Store, MlflowModelRegistry], services: Services
) -> None:
    config, store, registry = project
    P = f"{config.project}-"
    train(config, store, registry, names=[f"{P}intent-acme"], workers=1)
    # New params; a gate the new version cannot pass (n_train is 32).
    changed = write(
        config.root, services, config.dolt.database, epochs=4, metric="n_train", bound="max: 10"
    )
    plan = plan_training(changed, store, registry)
    reasons = {d.name: d.reason for d in plan.decisions}
    assert reasons[f"{P}intent-acme"] is Reason.PARAMS_CHANGED
    assert reasons[f"{P}intent-globex"] is Reason.NEW_MODEL
    report = train(changed, store, registry, names=[f"{P}intent-acme"], workers=1)
    [result] = report.results
    assert result.status == ModelStatus.TRAINED and result.version == 2 and not result.promoted
    assert "not promoted: n_train 32 fails max 10" in result.promotion
    assert registry.production(f"{P}intent-acme").version == 1  # type: ignore[union-attr]
    refused = registry.version(f"{P}intent-acme", 2).tags
    assert "not promoted" in refused["promotion"] and refused["promotion.state"] == "not_promoted"


@pytest.mark.slow
def test_a_failing_model_leaves_the_others_trained(
    project: tuple[Config, Store, MlflowModelRegistry], services: Services, tmp_path: Path
) -> None:
    config, store, registry = project
    P = f"{config.project}-"
    # 'tiny' has one row: the intent trainer refuses it. Plus a non-Python command trainer.
    (config.root / "count.sh").write_text(
        'set -e\nmkdir -p "$2/model"\n'
        "rows=$(awk 'END { print NR - 1 }' \"$1\")\n"
        'printf \'{"rows": %s}\\n\' "$rows" > "$2/metrics.json"\n'
        'cp "$1" "$2/model/data.csv"\n'
    )
    extra = f"""\
  - name: {P}counter
    query: "SELECT customer_id, text FROM examples WHERE customer_id = 'acme'"
    trainer: {{command: "sh count.sh {{data}} {{out}}"}}
"""
    config = write(config.root, services, config.dolt.database, extra=extra)
    store.commit_changes(
        "main",
        [
            ChangeSet("customers", CUSTOMERS, inserts=[{"customer_id": "tiny", "active": True}]),
            ChangeSet("examples", EXAMPLES, inserts=examples("tiny", 1)),
        ],
        "tiny customer",
    )
    report = train(config, store, registry, workers=2)
    status = {r.name: r.status for r in report.results}
    assert status == {
        f"{P}intent-acme": ModelStatus.TRAINED,
        f"{P}intent-globex": ModelStatus.TRAINED,
        f"{P}intent-initech": ModelStatus.TRAINED,
        f"{P}intent-tiny": ModelStatus.FAILED,
        f"{P}counter": ModelStatus.TRAINED,
    }
    tiny = by_name(report)[f"{P}intent-tiny"]
    assert "at least 2 rows" in tiny.reason
    assert registry.client.get_run(tiny.run_id).info.status == "FAILED"
    counter = by_name(report)[f"{P}counter"]
    assert counter.metrics == {"rows": 40.0}
    source = registry.version(f"{P}counter", 1).source
    mlflow.set_tracking_uri(services.mlflow_uri)
    local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp_path))
    assert (Path(local) / "data.csv").read_text().startswith("customer_id,text\n")

    # The CLI: exit status 1 names the failure; --json carries every model.
    code = main(["--config", str(config.path), "train", "--json", "--workers", "2"])
    assert code == 1


@pytest.mark.slow
def test_cli_plan_github_output_and_model_commands(
    project: tuple[Config, Store, MlflowModelRegistry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, store, registry = project
    P = f"{config.project}-"
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert (
        main(["--config", str(config.path), "plan", "--format", "github", "--max-jobs", "2"]) == 0
    )
    lines = output.read_text().splitlines()
    matrix = json.loads(lines[0].removeprefix("matrix="))
    assert lines[1] == "count=2" and len(matrix["include"]) == 2
    shards = [Shard.from_json(job["shard"]) for job in matrix["include"]]
    assert sorted(m for s in shards for m in s.models) == [
        f"{P}intent-acme",
        f"{P}intent-globex",
        f"{P}intent-initech",
    ]
    capsys.readouterr()
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_WORKFLOW", "train")
    code = main(["--config", str(config.path), "train", "--shard", shards[0].to_json(), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trained"] == len(shards[0].models)
    name = shards[0].models[0]
    assert registry.version(name, 1).tags["github.run_id"] == "4242"

    # A second version (it passes promote_if, so it takes the alias), then the CLI moves it.
    train(config, store, registry, names=[name], force=True, workers=1)
    assert registry.production(name).version == 2  # type: ignore[union-attr]
    assert main(["--config", str(config.path), "model", "promote", name, "1"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config.path), "model", "rollback", name, "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert (moved["from_version"], moved["version"]) == (1, 2)
    assert registry.production(name).version == 2  # type: ignore[union-attr]
    assert main(["--config", str(config.path), "model", "rollback", name, "--to-version", "1"]) == 0
    assert registry.production(name).version == 1  # type: ignore[union-attr]
    capsys.readouterr()
    assert main(["--config", str(config.path), "model", "list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed[name]["production_version"] == 1
    assert listed[name]["dolt_commit"] == store.resolve("main")
    assert "accuracy" in listed[name]["metrics"]


@pytest.mark.slow
def test_two_runners_promoting_one_model_keep_every_move(
    project: tuple[Config, Store, MlflowModelRegistry], tmp_path: Path
) -> None:
    """Two train processes in two workspaces promote the same model at once: the promotion lock
    (Dolt GET_LOCK) lets each decide on the alias as the other left it, so no move is lost."""
    import shutil
    import subprocess
    import sys

    config, _, registry = project
    model = f"{config.project}-intent-acme"
    assert main(["--config", str(config.path), "train", "--model", model]) == 0
    workspaces = []
    for name in ("runner-a", "runner-b"):
        root = tmp_path / name
        root.mkdir()
        shutil.copy(config.path, root / "platform.yaml")
        workspaces.append(root)
    kit = str(Path(sys.executable).parent / "platform-kit")
    runs = [
        subprocess.Popen(
            [
                kit,
                "--config",
                str(root / "platform.yaml"),
                "train",
                "--model",
                model,
                "--force",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root in workspaces
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    state = registry.alias_state(model)
    assert sorted(m.version for m in state.history) == [1, 2, 3]
    assert state.current == state.history[-1].version
