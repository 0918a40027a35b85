"""Releases on the real engine and registry, with model versions in the real MLflow server."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from mlflow.tracking import MlflowClient

from platform_kit import release
from platform_kit.config import Config, load_config
from platform_kit.errors import ImageNotFoundError, PlatformKitError
from platform_kit.release.manifest import manifest_md5
from platform_kit.services import free_port
from platform_kit.store.dolt import DoltStore
from platform_kit.tracking.models import registry_for
from platform_kit.tracking.releases import ReleaseLog
from tests.conftest import REGISTRY, Services
from training.bow import BowModel


def model_version(client: MlflowClient, name: str, tmp: Path, bias: float) -> str:
    experiment = client.get_experiment_by_name("release-test") or client.get_experiment(
        client.create_experiment("release-test")
    )
    run = client.create_run(experiment.experiment_id)
    model = BowModel(
        labels=["no", "yes"],
        buckets=64,
        dim=4,
        ngrams=1,
        embedding=np.ones((64, 4), np.float32),
        weight=np.eye(2, 4, dtype=np.float32),
        bias=np.array([0.0, bias], np.float32),
    )
    model.save(tmp / name / "model")
    client.log_artifacts(run.info.run_id, str(tmp / name / "model"), "model")
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name,
        f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"dolt.commit": "c" * 32, "model.name": name},
    )
    client.set_registered_model_alias(name, "production", version.version)
    return str(version.version)


@pytest.fixture
def project(tmp_path: Path, services: Services, docker_client: Any) -> tuple[Config, list[str]]:
    suffix = uuid.uuid4().hex[:8]
    names = [f"rel-a-{suffix}", f"rel-b-{suffix}"]
    database = f"rel_{suffix}"
    models = "".join(
        f"  - name: {n}\n    query: SELECT 1\n    trainer: training.intent:train\n" for n in names
    )
    (tmp_path / "platform.yaml").write_text(
        f"project: rel\ndolt: {{database: {database}, server: 'mysql://root@{services.dolt.host}:"
        f"{services.dolt.port}'}}\nmlflow: {{tracking_uri: '{services.mlflow_uri}'}}\n"
        f"models:\n{models}release: {{image: {REGISTRY}/release-test-{suffix}}}\n"
    )
    DoltStore(services.dolt.host, services.dolt.port, "root", "", database).create_database()
    return load_config(tmp_path / "platform.yaml"), names


def test_build_serve_noop_single_model_rollback_and_release_rollback(
    project: tuple[Config, list[str]], services: Services, tmp_path: Path, docker_client: Any
) -> None:
    config, (a, b) = project
    client = MlflowClient(services.mlflow_uri)
    with pytest.raises(PlatformKitError, match=f"no 'production' version for: {a}, {b}"):
        release.build_release(config)
    manifest = {
        a: model_version(client, a, tmp_path, 0.0),
        b: model_version(client, b, tmp_path, 5.0),
    }

    first = release.build_release(config)
    # The tag, recomputed independently from the aliases, is the MD5 of the canonical JSON.
    by_alias = {n: client.get_model_version_by_alias(n, "production").version for n in (a, b)}
    assert first.built and first.tag == manifest_md5(by_alias) == manifest_md5(manifest)
    image = docker_client.images.get(first.reference)
    labels = image.labels
    assert labels["platform-kit.manifest.md5"] == first.tag
    assert json.loads(labels["platform-kit.manifest"]) == manifest
    assert (
        labels["platform-kit.dolt.commit"] == "c" * 32
        and labels["org.opencontainers.image.revision"]
    )
    assert image.attrs["Config"]["User"] == "10001:10001"
    assert ReleaseLog(client).find(first.tag) is not None

    port = free_port()
    container = docker_client.containers.run(
        first.reference,
        detach=True,
        network_mode="host",
        environment={"PORT": str(port)},
        remove=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url)
        assert requests.get(f"{url}/health", timeout=5).json() == {"status": "ok", "models": 2}
        assert requests.get(f"{url}/manifest", timeout=5).json() == {
            "manifest": manifest,
            "md5": first.tag,
        }
        answer = requests.post(f"{url}/predict/{b}", json={"texts": ["anything"]}, timeout=5).json()
        assert answer["predictions"][0]["label"] == "yes" and answer["version"] == manifest[b]
        assert (
            requests.post(f"{url}/predict/nope", json={"texts": []}, timeout=5).status_code == 404
        )
    finally:
        container.remove(force=True)

    again = release.build_release(config)  # unchanged aliases: a no-op
    assert not again.built and again.tag == first.tag
    assert len([r for r in release.list_releases(config) if r["tag"] == first.tag]) == 1

    v2 = model_version(client, a, tmp_path, 5.0)
    second = release.build_release(config)
    assert second.tag != first.tag and second.manifest == {a: v2, b: manifest[b]}
    assert release.diff_releases(config, first.tag, second.tag) == {a: (manifest[a], v2)}
    registry = registry_for(config)
    registry.rollback(a, to_version=int(manifest[a]))  # single-model rollback ...
    assert release.build_release(config).tag == first.tag  # ... gives back the first manifest

    with pytest.raises(ImageNotFoundError):
        release.rollback_release(config, "0" * 32)
    release.rollback_release(config, first.tag)
    digest = requests.head(
        f"http://{REGISTRY}/v2/{first.image.split('/', 1)[1]}/manifests/production",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=5,
    ).headers["Docker-Content-Digest"]
    assert digest == docker_client.images.get_registry_data(first.reference).id


def test_registry_down_records_nothing(
    project: tuple[Config, list[str]], services: Services, tmp_path: Path
) -> None:
    config, names = project
    client = MlflowClient(services.mlflow_uri)
    for n in names:
        model_version(client, n, tmp_path, 1.0)
    dead = f"127.0.0.1:{free_port()}"
    text = config.path.read_text().replace(REGISTRY, dead)
    config.path.write_text(text)
    config = load_config(config.path)
    before = len(ReleaseLog(client).all())
    with pytest.raises(PlatformKitError, match="registry"):
        release.build_release(config)
    assert len(ReleaseLog(client).all()) == before


def _wait(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(f"{url}/health", timeout=1)
            return
        except (OSError, requests.ConnectionError):
            time.sleep(0.2)
    raise AssertionError("the serving container did not answer")
