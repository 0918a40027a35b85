"""The REST path (platform_kit.tracking.rest) reads and writes what MLflow's client does, on real servers.

The local server has no login; the production-shaped one (infra/prod-up.sh) wants basic auth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from platform_kit.errors import ServiceError, TrackingError
from platform_kit.store import open_store
from platform_kit.store.base import ChangeSet
from platform_kit.tracking import rest as rest_module
from platform_kit.tracking import tags as T
from platform_kit.tracking.client import mlflow_client
from platform_kit.tracking.mlflow_registry import MlflowModelRegistry, _registered_model
from platform_kit.tracking.registry import RunRecord
from platform_kit.tracking.rest import MlflowRest, rest_api
from tests.conftest import Services
from tests.integration.test_train import CUSTOMERS, EXAMPLES, examples, write
from tests.prod import ProdDeployment

ROOT = Path(__file__).resolve().parents[2]


def test_rest_searches_read_what_the_client_reads(services: Services, tmp_path: Path) -> None:
    project = f"rest-{uuid.uuid4().hex[:8]}"
    client = mlflow_client(services.mlflow_uri)
    registry = MlflowModelRegistry(client, project=project, experiment=project)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    for i, name in enumerate([f"{project}-a", f"{project}-b"]):
        tags = {"data.fingerprint": str(i), "model.name": name}
        run_id, uri = registry.log_run(RunRecord(name, tags, {"i": i}, {"accuracy": 0.5}, tmp_path))
        version = registry.register(name, run_id, f"{uri}/model", tags)
        if i == 0:
            registry.promote(name, version)
    query = f"tags.`{T.PROJECT}` = '{project}'"
    rest = rest_api(services.mlflow_uri)
    assert rest is not None
    by_client = sorted(
        (_registered_model(m) for m in client.search_registered_models(query)),
        key=lambda m: m.name,
    )
    assert sorted(rest.registered_models(query), key=lambda m: m.name) == by_client
    assert by_client[0].latest is not None and by_client[0].aliases == {"production": 1}
    versions = sorted(rest.model_versions(query), key=lambda v: v.name)
    assert versions == sorted(
        (v for vs in registry.versions().values() for v in vs), key=lambda v: v.name
    )


def test_rest_refusals_and_unreachable_servers_are_one_line(services: Services) -> None:
    rest = MlflowRest(services.mlflow_uri)
    with pytest.raises(TrackingError, match="MLflow refused to search registered models: "):
        list(rest.registered_models("no such = 'filter'"))
    with pytest.raises(ServiceError, match="MLflow is unreachable while trying to search"):
        list(MlflowRest("http://127.0.0.1:9").model_versions(""))


def test_rest_reads_with_the_runners_credentials(
    prod_deployment: ProdDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, prod_deployment.env[key])
    rest = MlflowRest(prod_deployment.mlflow_uri)
    assert list(rest.registered_models("name = 'none'")) == []
    name = f"rest-write-{uuid.uuid4().hex[:8]}"
    assert rest.create_registered_model(name, {T.PROJECT: "rest-write"})
    assert not rest.create_registered_model(name, {T.PROJECT: "rest-write"})  # exists: False
    found = rest.registered_model(name)
    assert found is not None and found.tags == {T.PROJECT: "rest-write"}
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    with pytest.raises(TrackingError, match="MLflow refused to create registered model"):
        MlflowRest(prod_deployment.mlflow_uri).create_registered_model(f"{name}-2", {})
    with pytest.raises(TrackingError, match="MLflow refused to search registered models"):
        list(MlflowRest(prod_deployment.mlflow_uri).registered_models("name = 'none'"))


def test_pages_asked_for_at_once_read_what_paging_one_by_one_reads(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = f"pages-{uuid.uuid4().hex[:8]}"
    client = mlflow_client(services.mlflow_uri)
    for i in range(7):
        client.create_registered_model(f"{project}-{i}", tags={T.PROJECT: project})
    rest = MlflowRest(services.mlflow_uri)
    params = {"filter": f"tags.`{T.PROJECT}` = '{project}'", "max_results": 2}

    def names(ahead: int) -> list[str]:
        found = rest.pages(
            "registered-models/search", params, "registered_models", "s", ahead=ahead
        )
        return [m["name"] for m in found]

    real_token = rest_module._offset_token
    one_by_one = names(1)
    assert one_by_one == [f"{project}-{i}" for i in range(7)]
    assert names(3) == names(5) == one_by_one  # 3 pages at once then 1 more; 5 past the end
    # A server whose tokens differ: a guess it refuses, or one it reads as another page.
    monkeypatch.setattr(rest_module, "_offset_token", lambda offset: "not a token")
    assert names(3) == one_by_one
    monkeypatch.setattr(rest_module, "_offset_token", lambda offset: real_token(offset + 1))
    assert names(3) == one_by_one
    assert [m.name for m in rest.registered_models(params["filter"], expected=300)] == one_by_one


def test_rest_writes_record_what_the_client_writes(services: Services, tmp_path: Path) -> None:
    """The same run and version, once written through REST and once through MLflow's client."""
    client = mlflow_client(services.mlflow_uri)
    out = tmp_path / "out"
    (out / "model" / "sub").mkdir(parents=True)
    (out / "model" / "weights.bin").write_bytes(bytes(range(256)) * 8)
    (out / "model" / "sub" / "meta data.json").write_text('{"é": 1}')
    params = {"lr": 0.1, "layers": [1, 2], "name": "x" * 7000}
    metrics = {"accuracy": 0.75, "loss": float("nan"), "big": float("inf")}
    written = {}
    for how, rest in (("rest", rest_api(services.mlflow_uri)), ("client", None)):
        project = f"w-{how}-{uuid.uuid4().hex[:8]}"
        registry = MlflowModelRegistry(client, project=project, experiment=project, rest=rest)
        name = f"{project}-m"
        run_id, uri = registry.log_run(RunRecord(name, {"model.name": name}, params, metrics, out))
        version = registry.register_new(
            name, run_id, f"{uri}/model", {"model.name": name}, promote="first"
        )
        assert version == 1
        run = client.get_run(run_id)
        files = sorted(
            f.path
            for f in client.list_artifacts(run_id, "model")
            + client.list_artifacts(run_id, "model/sub")
        )
        mv = client.get_model_version(name, "1")
        model = client.get_registered_model(name)
        record = {
            "status": run.info.status,
            "run_name": run.info.run_name,
            "ended": run.info.end_time >= run.info.start_time > 0,
            "params": run.data.params,
            "metrics": {k: repr(v) for k, v in run.data.metrics.items()},
            "tags": {
                k: v for k, v in run.data.tags.items() if k not in (T.PROJECT, "mlflow.runName")
            },
            "files": files,
            "source": mv.source.replace(run_id, "RUN").replace(run.info.experiment_id, "EXP"),
            "version tags": {k: v for k, v in mv.tags.items() if k != T.PROJECT},
            "aliases": model.aliases,
            "model tags": sorted(model.tags),
        }
        written[how] = json.dumps(record, sort_keys=True).replace(project, "P")
        local = Path(client.download_artifacts(run_id, "model", str(tmp_path / how)))
        assert (local / "weights.bin").read_bytes() == (out / "model" / "weights.bin").read_bytes()
        assert (local / "sub" / "meta data.json").read_text() == '{"é": 1}'
    assert written["rest"] == written["client"]


def test_train_through_rest_imports_no_mlflow(services: Services, tmp_path: Path) -> None:
    """A train whose server speaks REST never pays mlflow's second of import."""
    database = f"t{uuid.uuid4().hex[:10]}"
    config = write(tmp_path / "proj", services, database, epochs=1)
    store = open_store(config)
    store.create_database()
    store.commit_changes(
        "main",
        [
            ChangeSet("customers", CUSTOMERS, inserts=[{"customer_id": "acme", "active": True}]),
            ChangeSet("examples", EXAMPLES, inserts=examples("acme", 20)),
        ],
        "initial data",
    )
    probe = (
        "import sys\n"
        "from platform_kit.cli import main\n"
        "sys.argv = ['platform-kit', 'train', '--json']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('MLFLOW', 'mlflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=config.root,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert '"trained": 1' in done.stdout, done.stderr[-2000:]
    assert "MLFLOW False" in done.stdout
