"""The production-shaped deployment of ``infra/prod-up.sh``, for tests that need servers that ask
for credentials (Dolt with per-role users, MLflow with basic-auth on PostgreSQL, an htpasswd
registry, a non-root runner user).

Tests use the session fixture ``prod_deployment`` (tests/conftest.py), built on
:func:`start_prod_deployment`: it runs ``bash infra/prod-up.sh up`` once (idempotent: servers
already up are kept) and reads ``prod-up.sh env``. Servers it had to start are stopped at the
end of the session; servers that were already up stay up. Under CI a deployment that cannot
start FAILS the test.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SCRIPT = Path(__file__).resolve().parents[1] / "infra" / "prod-up.sh"
Role = Literal["sync", "merge", "read"]


@dataclass(frozen=True)
class ProdDeployment:
    """What ``prod-up.sh env`` exports, with helpers for the jobs' environments."""

    env: dict[str, str] = field(repr=False)  # holds the passwords: kept out of reports

    @property
    def dolt_host(self) -> str:
        return self.env["PK_DOLT_HOST"]

    @property
    def dolt_port(self) -> int:
        return int(self.env["PK_DOLT_PORT"])

    @property
    def database(self) -> str:
        return self.env["PK_DOLT_DATABASE"]

    @property
    def dolt_server(self) -> str:
        """``dolt.server`` for platform.yaml (the user comes from DOLT_USER per job)."""
        return self.env["PK_DOLT_SERVER"]

    @property
    def mlflow_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def registry(self) -> str:
        """``host:port`` of the registry that wants a login."""
        return self.env["PK_REGISTRY"]

    @property
    def runner_user(self) -> str:
        return self.env["PK_RUNNER_USER"]

    def dolt_user(self, role: Role) -> tuple[str, str]:
        """(user, password) of a kit role: sync, merge or read."""
        key = role.upper()
        return self.env[f"PK_DOLT_{key}_USER"], self.env[f"PK_DOLT_{key}_PASSWORD"]

    def job_env(self, role: Role) -> dict[str, str]:
        """The variables a job of ``role`` gets: its Dolt user and MLflow's credentials."""
        user, password = self.dolt_user(role)
        return {
            "DOLT_USER": user,
            "DOLT_PASSWORD": password,
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "MLFLOW_TRACKING_USERNAME": self.env["MLFLOW_TRACKING_USERNAME"],
            "MLFLOW_TRACKING_PASSWORD": self.env["MLFLOW_TRACKING_PASSWORD"],
        }

    def secrets(self) -> list[str]:
        """Every password of the deployment (to assert none leaks into logs)."""
        return [v for k, v in self.env.items() if k.endswith("PASSWORD") and v]


def _script(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def parse_env(text: str) -> dict[str, str]:
    """``export K='v'`` lines -> {K: v}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            out[key] = value
    return out


def start_prod_deployment() -> tuple[ProdDeployment, bool]:
    """Run ``prod-up.sh up``; returns the deployment and whether it was already up.

    Raises:
        RuntimeError: the script failed (its last output lines in the message).
    """
    was_up = _script("status", 60).returncode == 0
    up = _script("up", 900)
    if up.returncode != 0:
        tail = "\n".join((up.stdout + up.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"infra/prod-up.sh up failed (exit {up.returncode}):\n{tail}")
    printed = _script("env", 60)
    if printed.returncode != 0:
        raise RuntimeError(f"infra/prod-up.sh env failed: {printed.stderr.strip()}")
    return ProdDeployment(parse_env(printed.stdout)), was_up


def stop_prod_deployment() -> None:
    """``prod-up.sh down``: stop the servers; data, passwords and the runner user stay."""
    _script("down", 120)


def docker(docker_config: Path, *args: str, stdin: bytes | None = None) -> str:
    """The docker CLI with its config (and so its logins) in ``docker_config``; stdout."""
    done = subprocess.run(
        ["docker", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, "DOCKER_CONFIG": str(docker_config)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode().strip()


def docker_login(deployment: ProdDeployment, docker_config: Path) -> Path:
    """``docker login`` to the deployment's registry, stored in a fresh ``docker_config``."""
    docker_config.mkdir()
    docker(
        docker_config,
        "login",
        deployment.registry,
        "--username",
        deployment.env["PK_REGISTRY_USERNAME"],
        "--password-stdin",
        stdin=deployment.env["PK_REGISTRY_PASSWORD"].encode(),
    )
    return docker_config


@contextlib.contextmanager
def pushed_image(docker_config: Path, repository: str) -> Iterator[tuple[str, str]]:
    """(tag, digest) of a one-file image pushed to ``repository`` with the docker CLI; the local
    image is removed after."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    image = f"{repository}:{uuid.uuid4().hex[:12]}"
    docker(docker_config, "import", "-", image, stdin=buffer.getvalue())
    try:
        docker(docker_config, "push", image)
        digest = docker(docker_config, "inspect", "--format", "{{index .RepoDigests 0}}", image)
        yield image.rsplit(":", 1)[1], digest.split("@", 1)[1]
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)
