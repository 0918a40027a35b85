"""The composition root: what each command needs, what it may start, and where it refuses to."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from platform_kit import endpoints, services
from platform_kit.cli import build_parser, main
from platform_kit.config import Config, load_config
from platform_kit.endpoints import Service
from platform_kit.errors import ConfigError, ServiceError
from platform_kit.project import NOTHING, Needs, Project

# A port nothing listens on: connections are refused at once.
CLOSED = 9


def project_file(tmp_path: Path, body: str = "") -> Config:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "platform.yaml").write_text(f"project: p\n{body}")
    return load_config(tmp_path / "platform.yaml")


@pytest.fixture
def no_starting(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail the test if anything tries to start a local server; record the attempts."""
    attempts: list[object] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError("a local server was started")

    monkeypatch.setattr(services, "services_up", refuse)
    return attempts


def leaf_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every runnable command ('data merge', 'plan', ...) and its parser."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[prefix] = parser
        for sub in subs:
            for name, child in sub.choices.items():
                walk(child, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    return out


def test_every_command_declares_its_needs() -> None:
    undeclared = [
        name
        for name, parser in leaf_parsers().items()
        if name not in ("init", "services") and not isinstance(parser.get_default("needs"), Needs)
    ]
    assert not undeclared


def test_commands_that_only_read_never_start_a_server() -> None:
    starters = {
        n for n, p in leaf_parsers().items() if (p.get_default("needs") or NOTHING).start_local
    }
    assert starters == {
        "sync",
        "data merge",
        "data pull",  # it clones and moves main: a write
        "train",
        "run",
        "release build",
        "release rollback",
        "model promote",
        "model rollback",
    }


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["sync"], "dolt.server"),
        (["plan"], "dolt.server"),
        (["data", "log"], "dolt.server"),
        (["release", "list"], "mlflow.tracking_uri"),
        (["services", "up"], "dolt.server"),
    ],
)
def test_github_actions_refuses_a_config_that_would_start_local_servers(
    argv: list[str],
    key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_starting: list[object],
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    project_file(tmp_path)
    assert main(["--config", str(tmp_path / "platform.yaml"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"set {key}" in err
    assert "GitHub Actions" in err
    assert not no_starting and not (tmp_path / ".platform" / "services.json").exists()


def test_github_actions_checks_configured_servers_and_starts_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_starting: list[object],
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    project_file(
        tmp_path,
        f"dolt: {{server: 'mysql://kit@127.0.0.1:{CLOSED}'}}\n"
        f"mlflow: {{tracking_uri: 'http://127.0.0.1:{CLOSED}'}}\n",
    )
    assert main(["--config", str(tmp_path / "platform.yaml"), "sync"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1  # the retries are logged, not printed by the console
    assert f"Dolt is unreachable at mysql://kit@127.0.0.1:{CLOSED}" in err
    assert not no_starting


def test_a_reading_command_does_not_start_a_local_server(
    tmp_path: Path, no_starting: list[object]
) -> None:
    config = project_file(tmp_path)
    with pytest.raises(ServiceError, match=r"local Dolt server is not running.*services up"):
        Project.for_command(config, Needs({Service.DOLT}))
    assert not no_starting


def test_a_writing_command_starts_only_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project_file(tmp_path)
    started: list[list[Service]] = []
    monkeypatch.setattr(services, "services_up", lambda c, only: started.append(list(only)))
    healthy = endpoints.ServiceStatus("dolt", "mysql://root@127.0.0.1:1", True, True)
    monkeypatch.setattr(endpoints, "service_status", lambda c, s: healthy)
    project = Project.for_command(config, Needs({Service.DOLT}, start_local=True))
    assert started == [[Service.DOLT]]
    project.require({Service.DOLT})  # checked once per project
    assert started == [[Service.DOLT]]


def test_dolt_user_replaces_the_configured_user_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOLT_USER", "kit_read")
    shared = project_file(tmp_path, "dolt: {server: 'mysql://root@dolt.example:3307'}\n")
    endpoint = endpoints.dolt_endpoint(shared)
    assert (endpoint.user, endpoint.host, endpoint.port) == ("kit_read", "dolt.example", 3307)
    local = project_file(tmp_path / "local")
    (local.state_dir).mkdir(parents=True)
    (local.state_dir / "services.json").write_text('{"dolt": {"pid": 1, "port": 3306}}')
    assert endpoints.dolt_endpoint(local).user == "root"  # the local server has only root


def test_injected_backends_are_used_and_others_built_lazily(tmp_path: Path) -> None:
    config = project_file(tmp_path)
    store: Any = object()
    project = Project(config, store=store)
    assert project.store is store
    with pytest.raises(ConfigError, match="no 'release' section"):
        project.registry  # noqa: B018 - built on first use, from the config


def test_another_alias_is_a_view_not_a_change(tmp_path: Path) -> None:
    config = project_file(tmp_path, "mlflow: {tracking_uri: 'http://127.0.0.1:9'}\n")
    project = Project(config)
    staging = project.models_with_alias("staging")
    assert staging.alias == "staging" and project.models.alias == "production"
    assert staging.client is project.models.client
    assert project.models_with_alias(None) is project.models
