"""The registry client against the htpasswd registry of infra/prod-up.sh, after `docker login`."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_kit.errors import ReleaseError
from platform_kit.release.registry import Registry
from tests.prod import ProdDeployment, docker_login, pushed_image

REPO = "platform-kit-test/login"


@pytest.fixture
def logged_in(
    prod_deployment: ProdDeployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A fresh docker config holding what `docker login` stored for the registry."""
    config = docker_login(prod_deployment, tmp_path / "docker")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


@pytest.fixture
def pushed(prod_deployment: ProdDeployment, logged_in: Path) -> Iterator[tuple[str, str]]:
    """(tag, digest) of a one-file image pushed with the docker CLI."""
    with pushed_image(logged_in, f"{prod_deployment.registry}/{REPO}") as pushed:
        yield pushed


def test_digest_after_docker_login(
    prod_deployment: ProdDeployment, pushed: tuple[str, str]
) -> None:
    tag, digest = pushed
    registry = Registry(f"{prod_deployment.registry}/{REPO}")
    assert registry.digest(tag) == digest
    assert digest.startswith("sha256:")
    assert registry.has(tag)
    assert not registry.has("no-such-tag")


def test_no_login_names_docker_login(
    prod_deployment: ProdDeployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(ReleaseError) as caught:
        Registry(f"{prod_deployment.registry}/{REPO}").has("latest")
    assert f"docker login {prod_deployment.registry}" in str(caught.value)


def test_wrong_password_is_refused_and_not_printed(
    prod_deployment: ProdDeployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Wrong-" + uuid.uuid4().hex
    auth = base64.b64encode(f"{prod_deployment.env['PK_REGISTRY_USERNAME']}:{wrong}".encode())
    config = {"auths": {prod_deployment.registry: {"auth": auth.decode()}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(ReleaseError, match="refused the credentials") as caught:
        Registry(f"{prod_deployment.registry}/{REPO}").has("latest")
    assert wrong not in str(caught.value)
    assert f"docker login {prod_deployment.registry}" in str(caught.value)
