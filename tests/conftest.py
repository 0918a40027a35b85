"""Shared fixtures: real services, started once per test session.

A test that needs a service that is not available FAILS when CI is set (it never skips there);
on a developer machine it skips with the reason, so the gap is visible in the summary.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from platform_kit import endpoints
from platform_kit import services as svc
from platform_kit.config import Config, DoltServer, load_config
from tests.prod import ProdDeployment, start_prod_deployment, stop_prod_deployment

REGISTRY = os.environ.get("PLATFORM_KIT_REGISTRY", "127.0.0.1:5000")


def require(service: str, why: str) -> None:
    """Fail under CI, skip elsewhere: a missing service is never silently ignored."""
    message = f"{service} is not available: {why}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI requires every service; see 'make test')", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts, and ends, without the variables that point the kit elsewhere.

    MLflow's client sets MLFLOW_TRACKING_URI in os.environ as a side effect; left over, it would
    make a later test's local project treat MLflow as external, also in module fixtures that are
    set up before this fixture runs for their first test, hence the clean-up at the end too.
    """
    names = ("MLFLOW_TRACKING_URI", "GITHUB_SHA", "GITHUB_ACTIONS", "GITHUB_OUTPUT")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    yield
    for name in names:
        os.environ.pop(name, None)


@dataclass(frozen=True)
class Services:
    config: Config
    dolt: DoltServer
    mlflow_uri: str


def write_project(root: Path, body: str = "") -> Config:
    """A minimal project directory with a platform.yaml; ``body`` adds sections."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: kit-test
            dolt: {{database: training}}
            release: {{image: {REGISTRY}/platform-kit-test}}
            """
        )
        + textwrap.dedent(body)
    )
    return load_config(root / "platform.yaml")


def start_services(config: Config) -> None:
    """'services up' for a project's own servers; a failure fails the test (never skips in CI)."""
    try:
        statuses = svc.services_up(config)
    except Exception as exc:
        require("dolt sql-server / mlflow server", str(exc))
    bad = [s for s in statuses if not s.healthy]
    if bad:
        require(", ".join(s.name for s in bad), "not healthy after 'services up'")


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A real dolt sql-server and MLflow server for the whole test session."""
    config = write_project(tmp_path_factory.mktemp("services"))
    start_services(config)
    yield Services(config, endpoints.dolt_endpoint(config), endpoints.mlflow_uri(config))
    svc.services_down(config)


@pytest.fixture(scope="session")
def docker_client() -> object:
    """A docker SDK client for a live engine, with the local registry answering."""
    import docker
    import requests

    try:
        client = docker.from_env(version="auto")
        client.ping()
    except Exception as exc:
        require("Docker engine", f"{type(exc).__name__}: {exc} (run 'bash infra/docker-up.sh')")
    try:
        requests.get(f"http://{REGISTRY}/v2/", timeout=3).raise_for_status()
    except Exception as exc:
        require(f"registry at {REGISTRY}", f"{type(exc).__name__} (run 'bash infra/docker-up.sh')")
    return client


@pytest.fixture(scope="session")
def prod_deployment() -> Iterator[ProdDeployment]:
    """infra/prod-up.sh's production-shaped deployment: servers that ask for credentials.

    Started once (idempotent); servers this session started are stopped at its end.
    """
    try:
        deployment, was_up = start_prod_deployment()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        require("production-shaped deployment (infra/prod-up.sh up)", str(exc))
    yield deployment
    if not was_up:
        stop_prod_deployment()
