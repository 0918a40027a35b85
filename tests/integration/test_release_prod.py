"""Deploying against servers that ask for credentials (infra/prod-up.sh): the read-only Dolt user
of the release jobs holds the release lock, and production moves inside the htpasswd registry
with what `docker login` stored."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_kit.errors import StoreError
from platform_kit.release import RELEASE_LOCK
from platform_kit.release.registry import Registry
from platform_kit.store.dolt import DoltStore
from tests.prod import ProdDeployment, docker

REPO = "platform-kit-test/deploy"


@pytest.fixture
def pushed(
    prod_deployment: ProdDeployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """(tag, digest) of a one-file image pushed with the docker CLI after `docker login`; the
    kit reads the same docker config."""
    config = tmp_path / "docker"
    config.mkdir()
    env = prod_deployment.env
    docker(
        config,
        "login",
        prod_deployment.registry,
        "--username",
        env["PK_REGISTRY_USERNAME"],
        "--password-stdin",
        stdin=env["PK_REGISTRY_PASSWORD"].encode(),
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    tag = uuid.uuid4().hex[:12]
    image = f"{prod_deployment.registry}/{REPO}:{tag}"
    docker(config, "import", "-", image, stdin=buffer.getvalue())
    try:
        docker(config, "push", image)
        digest = docker(config, "inspect", "--format", "{{index .RepoDigests 0}}", image)
        yield tag, digest.split("@", 1)[1]
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


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
