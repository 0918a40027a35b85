"""Deploying against servers that ask for credentials (infra/prod-up.sh): the read-only Dolt user
of the release jobs holds the release lock, production moves inside the htpasswd registry with
what `docker login` stored, and the kit assembles an image there (blob uploads, config and
manifest puts) that the docker CLI pulls."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_kit.errors import StoreError
from platform_kit.release import DOCKER_CONFIG, DOCKER_LAYER, RELEASE_LOCK
from platform_kit.release.layers import write_layer
from platform_kit.release.registry import Registry
from platform_kit.store.dolt import DoltStore
from tests.prod import ProdDeployment, docker, docker_login, pushed_image

REPO = "platform-kit-test/deploy"


@pytest.fixture
def pushed(
    prod_deployment: ProdDeployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """(tag, digest) of a one-file image pushed with the docker CLI after `docker login`; the
    kit reads the same docker config."""
    config = docker_login(prod_deployment, tmp_path / "docker")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    with pushed_image(config, f"{prod_deployment.registry}/{REPO}") as pushed:
        yield pushed


def test_kit_read_holds_the_release_lock_against_another_runner(
    prod_deployment: ProdDeployment,
) -> None:
    user, password = prod_deployment.dolt_user("read")
    runners = [
        DoltStore(
            prod_deployment.dolt_host,
            prod_deployment.dolt_port,
            user,
            password,
            prod_deployment.database,
        )
        for _ in range(2)
    ]
    with (
        runners[0].lock(RELEASE_LOCK, timeout=5),
        pytest.raises(StoreError, match="is held by another"),
        runners[1].lock(RELEASE_LOCK, timeout=0.5),
    ):
        pass
    with runners[1].lock(RELEASE_LOCK, timeout=5):
        pass


def test_production_moves_inside_the_registry_after_docker_login(
    prod_deployment: ProdDeployment,
    pushed: tuple[str, str],
) -> None:
    tag, digest = pushed
    registry = Registry(f"{prod_deployment.registry}/{REPO}")
    assert registry.labels(tag) == {}  # an image with no labels, read from its config blob
    target = f"production-{uuid.uuid4().hex[:8]}"
    assert registry.digest(target) is None
    assert registry.retag(tag, target) == digest
    assert registry.digest(target) == digest
    assert registry.labels(f"missing-{uuid.uuid4().hex[:8]}") is None


def test_the_kit_assembles_an_image_in_the_registry_after_docker_login(
    prod_deployment: ProdDeployment, pushed: tuple[str, str], tmp_path: Path
) -> None:
    tag, _ = pushed
    registry = Registry(f"{prod_deployment.registry}/{REPO}")
    found = registry.manifest(tag)
    assert found is not None
    manifest = json.loads(found[0])
    config = json.loads(registry.blob(manifest["config"]["digest"]) or b"")
    content = uuid.uuid4().hex.encode()
    layer = write_layer(tmp_path / "layer.tar.gz", files={"models/manifest.json": content})
    assert not registry.has_blob(layer.digest)
    registry.upload_blob(layer.digest, layer.path)
    assert registry.has_blob(layer.digest)
    config["rootfs"]["diff_ids"].append(layer.diff_id)
    config_bytes = json.dumps(config).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    registry.upload_blob(config_digest, config_bytes)
    manifest["config"] = {
        "mediaType": DOCKER_CONFIG,
        "size": len(config_bytes),
        "digest": config_digest,
    }
    manifest["layers"].append(layer.descriptor(DOCKER_LAYER))
    new_tag = f"assembled-{uuid.uuid4().hex[:8]}"
    registry.put_manifest(new_tag, json.dumps(manifest).encode(), found[1])

    image = f"{prod_deployment.registry}/{REPO}:{new_tag}"
    login = Path(os.environ["DOCKER_CONFIG"])
    try:
        docker(login, "pull", image)
        container = docker(login, "create", image, "none")
        try:
            copied = subprocess.run(
                ["docker", "cp", f"{container}:/models/manifest.json", "-"],
                capture_output=True,
                check=True,
            ).stdout
        finally:
            subprocess.run(["docker", "rm", container], capture_output=True, check=False)
        with tarfile.open(fileobj=io.BytesIO(copied)) as tar:
            assert tar.extractfile("manifest.json").read() == content  # type: ignore[union-attr]
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)
