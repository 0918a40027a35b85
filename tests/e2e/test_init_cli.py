"""`platform-kit init` through the installed CLI, and other commands on the project it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platform_kit import services as svc
from platform_kit.init import project_name
from tests.conftest import require
from tests.e2e.conftest import cli, cli_json


def test_init_then_services_status(tmp_path: Path) -> None:
    project = tmp_path / "bots"
    out = cli_json("init", str(project))
    assert out["project"] == "bots"
    assert out["config"] == str(project / "platform.yaml")
    assert all(Path(f).is_file() for f in out["files"])

    status = cli(
        "--config", str(project / "platform.yaml"), "services", "status", "--json", check=False
    )
    assert status.returncode in (0, 3), status.stderr  # 3: the local servers are not running
    services = {s["name"]: s for s in json.loads(status.stdout)["services"]}
    assert set(services) == {"dolt", "mlflow"}
    assert all(s["managed"] for s in services.values())  # server: null -> the kit runs them


def test_init_refuses_to_overwrite_then_force(tmp_path: Path) -> None:
    first = cli("init", cwd=tmp_path)  # DIR defaults to the current directory
    assert "platform.yaml" in first.stdout
    again = cli("init", cwd=tmp_path, check=False)
    assert again.returncode == 2
    message = again.stderr.strip()
    assert "\n" not in message and "already exists" in message and "--force" in message
    (tmp_path / "platform.yaml").write_text("project: edited\n")
    cli("init", "--force", cwd=tmp_path)
    assert f"project: {project_name(tmp_path)}\n" in (tmp_path / "platform.yaml").read_text()


@pytest.mark.slow
def test_sync_reads_the_sample_sheets(tmp_path: Path) -> None:
    try:
        svc.find_dolt()
    except Exception as exc:
        require("dolt binary", str(exc))
    cli("init", str(tmp_path))
    config = str(tmp_path / "platform.yaml")
    try:
        out = cli_json("--config", config, "sync", "--dry-run")
    finally:
        cli("--config", config, "services", "down", check=False)
    added = {s["sheet"]: s["added"] for s in out["sheets"]}
    assert added["customers"] == 3 and 24 <= added["examples"] < 100
