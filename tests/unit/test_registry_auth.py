"""The registry client authenticates as docker does: docker config, helpers, Bearer and Basic."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_kit.errors import ReleaseError
from platform_kit.release.registry import Credentials, DockerConfig, Registry, parse_challenge
from platform_kit.testing.registry_emulator import RegistryEmulator

REPO = "team/adapters"


@pytest.fixture
def emulator() -> Iterator[RegistryEmulator]:
    with RegistryEmulator() as server:
        yield server


@pytest.fixture
def docker_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG, so the user's own ~/.docker never leaks into a test."""
    directory = tmp_path / "docker"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


def login(docker_dir: Path, server: str, user: str, password: str, **extra: object) -> None:
    """What `docker login` writes without a credential store."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {"auths": {server: {"auth": auth}}, **extra}
    (docker_dir / "config.json").write_text(json.dumps(config))


def helper_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, answer: str | None
) -> Path:
    """A docker-credential-NAME program that records the host it was asked about."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    asked = tmp_path / f"{name}.asked"
    script = bin_dir / f"docker-credential-{name}"
    if answer is None:
        reply = 'echo "credentials not found in native keychain"; exit 1'
    else:
        reply = f"cat <<'EOF'\n{answer}\nEOF"
    script.write_text(f'#!/bin/sh\n[ "$1" = get ] || exit 2\ncat >"{asked}"\n{reply}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return asked


def test_bearer_token_flow_with_docker_login_credentials(
    emulator: RegistryEmulator, docker_dir: Path
) -> None:
    login(docker_dir, emulator.address, emulator.username, emulator.password)
    digest = emulator.put(REPO, "abc")
    registry = Registry(f"{emulator.address}/{REPO}")
    assert registry.digest("abc") == digest
    assert registry.has("abc")
    assert registry.digest("missing") is None
    flow = [(r.method, r.path, r.scheme, r.status) for r in emulator.requests]
    assert flow[:3] == [
        ("HEAD", f"/v2/{REPO}/manifests/abc", "", 401),
        ("GET", "/token", "basic", 200),
        ("HEAD", f"/v2/{REPO}/manifests/abc", "bearer", 200),
    ]
    # The token is reused: one token request for all three questions.
    assert sum(r.path == "/token" for r in emulator.requests) == 1


def test_expired_token_is_renewed(emulator: RegistryEmulator, docker_dir: Path) -> None:
    login(docker_dir, emulator.address, emulator.username, emulator.password)
    digest = emulator.put(REPO, "abc")
    registry = Registry(f"{emulator.address}/{REPO}")
    assert registry.digest("abc") == digest
    emulator.revoke_tokens()
    assert registry.digest("abc") == digest
    assert sum(r.path == "/token" for r in emulator.requests) == 2


def test_digest_is_computed_when_the_registry_omits_the_header(docker_dir: Path) -> None:
    with RegistryEmulator(omit_digest=True) as server:
        login(docker_dir, server.address, server.username, server.password)
        body = b'{"schemaVersion": 2, "layers": []}'
        server.put(REPO, "v1", body)
        found = Registry(f"{server.address}/{REPO}").digest("v1")
    assert found == "sha256:" + hashlib.sha256(body).hexdigest()
    assert found != "present"


def test_basic_auth_registry(docker_dir: Path) -> None:
    with RegistryEmulator(mode="basic") as server:
        login(docker_dir, f"http://{server.address}", server.username, server.password)
        digest = server.put(REPO, "abc")
        assert Registry(f"{server.address}/{REPO}").digest("abc") == digest
        assert [r.scheme for r in server.requests] == ["", "basic"]


def test_no_credentials_names_docker_login(emulator: RegistryEmulator, docker_dir: Path) -> None:
    emulator.put(REPO, "abc")
    with pytest.raises(ReleaseError) as caught:
        Registry(f"{emulator.address}/{REPO}").digest("abc")
    assert f"docker login {emulator.address}" in str(caught.value)
    assert "has none" in str(caught.value)


def test_wrong_password_is_refused_without_printing_it(
    emulator: RegistryEmulator, docker_dir: Path
) -> None:
    login(docker_dir, emulator.address, emulator.username, "wrong-password-123")
    emulator.put(REPO, "abc")
    with pytest.raises(ReleaseError) as caught:
        Registry(f"{emulator.address}/{REPO}").digest("abc")
    message = str(caught.value)
    assert emulator.address in message and f"docker login {emulator.address}" in message
    assert "wrong-password-123" not in message and emulator.username not in message


def test_basic_registry_refusal(docker_dir: Path) -> None:
    with RegistryEmulator(mode="basic") as server:
        login(docker_dir, server.address, server.username, "nope-nope")
        with pytest.raises(ReleaseError, match="refused the credentials"):
            Registry(f"{server.address}/{REPO}").digest("abc")


def test_anonymous_pull_needs_no_credentials(docker_dir: Path) -> None:
    with RegistryEmulator(anonymous_pull=True) as server:
        digest = server.put(REPO, "abc")
        assert Registry(f"{server.address}/{REPO}").digest("abc") == digest


def test_credential_helper_for_the_host(
    emulator: RegistryEmulator,
    docker_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = json.dumps(
        {"ServerURL": emulator.address, "Username": emulator.username, "Secret": emulator.password}
    )
    asked = helper_on_path(tmp_path, monkeypatch, "fake", answer)
    # A stale `auths` entry loses to the helper, as in docker.
    login(docker_dir, emulator.address, "old", "stale", credHelpers={emulator.address: "fake"})
    digest = emulator.put(REPO, "abc")
    assert Registry(f"{emulator.address}/{REPO}").digest("abc") == digest
    assert asked.read_text() == emulator.address


def test_default_credential_store_and_not_found(
    emulator: RegistryEmulator,
    docker_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    helper_on_path(tmp_path, monkeypatch, "empty", None)
    (docker_dir / "config.json").write_text(json.dumps({"credsStore": "empty"}))
    emulator.put(REPO, "abc")
    with pytest.raises(ReleaseError, match="has none for it"):
        Registry(f"{emulator.address}/{REPO}").digest("abc")


def test_missing_credential_helper_is_named(emulator: RegistryEmulator, docker_dir: Path) -> None:
    (docker_dir / "config.json").write_text(json.dumps({"credsStore": "no-such-helper-xyz"}))
    emulator.put(REPO, "abc")
    with pytest.raises(ReleaseError, match="docker-credential-no-such-helper-xyz is not on PATH"):
        Registry(f"{emulator.address}/{REPO}").digest("abc")


def test_identity_token_uses_the_refresh_grant(
    emulator: RegistryEmulator, docker_dir: Path
) -> None:
    config = {"auths": {emulator.address: {"identitytoken": emulator.refresh_token}}}
    (docker_dir / "config.json").write_text(json.dumps(config))
    digest = emulator.put(REPO, "abc")
    assert Registry(f"{emulator.address}/{REPO}").digest("abc") == digest
    assert [r.method for r in emulator.requests if r.path == "/token"] == ["POST"]


def test_docker_hub_names_share_the_index_key(docker_dir: Path) -> None:
    login(docker_dir, "https://index.docker.io/v1/", "hubuser", "hubpass")
    config = DockerConfig()
    assert config.credentials("registry-1.docker.io") == Credentials("hubuser", "hubpass")
    assert config.credentials("docker.io") == Credentials("hubuser", "hubpass")
    assert config.credentials("ghcr.io") is None
    assert "hubpass" not in repr(config.credentials("docker.io"))


def test_parse_challenge_keeps_commas_inside_quotes() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }


def test_a_push_asks_for_a_push_token_and_uploads_monolithically(
    emulator: RegistryEmulator, docker_dir: Path
) -> None:
    login(docker_dir, emulator.address, emulator.username, emulator.password)
    registry = Registry(f"{emulator.address}/{REPO}")
    layer = b"layer bytes" * 100
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    assert not registry.has_blob(digest)  # a pull token so far
    registry.upload_blob(digest, layer)
    assert registry.has_blob(digest) and emulator.blob(REPO, digest) == layer
    manifest = json.dumps({"schemaVersion": 2, "layers": [{"digest": digest}]}).encode()
    put = registry.put_manifest("v1", manifest, "application/vnd.oci.image.manifest.v1+json")
    assert put == "sha256:" + hashlib.sha256(manifest).hexdigest() == registry.digest("v1")
    assert registry.manifest("v1") == (manifest, "application/vnd.oci.image.manifest.v1+json")
    assert registry.blob(digest) == layer and registry.manifest("v2") is None
    writes = [(r.method, r.status) for r in emulator.requests if r.method in ("POST", "PUT")]
    # The pull token is refused for the write; a pull,push token is asked for once and kept.
    assert writes == [("POST", 401), ("POST", 202), ("PUT", 201), ("PUT", 201)]
    assert [r.method for r in emulator.requests if r.path == "/token"] == ["GET", "GET"]


def test_an_upload_from_a_file_and_a_wrong_digest(
    emulator: RegistryEmulator, docker_dir: Path, tmp_path: Path
) -> None:
    login(docker_dir, emulator.address, emulator.username, emulator.password)
    registry = Registry(f"{emulator.address}/{REPO}")
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(b"x" * 100_000)
    digest = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    registry.upload_blob(digest, blob)
    assert emulator.blob(REPO, digest) == blob.read_bytes()
    with pytest.raises(ReleaseError, match="HTTP 400"):
        registry.upload_blob("sha256:" + "0" * 64, b"other")


def test_a_pull_only_account_is_told_it_may_not_push(docker_dir: Path) -> None:
    with RegistryEmulator(anonymous_pull=True) as server:
        registry = Registry(f"{server.address}/{REPO}")
        assert not registry.has_blob("sha256:" + "0" * 64)
        with pytest.raises(ReleaseError, match="has none for it"):
            registry.upload_blob("sha256:" + "0" * 64, b"x")
