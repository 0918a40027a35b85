"""`platform-kit services` through the installed CLI."""

from __future__ import annotations

from pathlib import Path

from platform_kit import services as svc
from tests.conftest import require
from tests.e2e.conftest import cli, cli_json


def test_services_up_status_down(tmp_path: Path) -> None:
    try:
        svc.find_dolt()
    except Exception as exc:
        require("dolt binary", str(exc))
    (tmp_path / "platform.yaml").write_text("project: e2e\n")
    try:
        up = cli_json("services", "up", cwd=tmp_path)
        urls = {s["name"]: s["url"] for s in up["services"]}
        assert urls["dolt"].startswith("mysql://") and urls["mlflow"].startswith("http://")
        status = cli_json("services", "status", cwd=tmp_path)
        assert all(s["healthy"] for s in status["services"])
        assert {s["name"]: s["url"] for s in status["services"]} == urls
    finally:
        down = cli_json("services", "down", cwd=tmp_path)
    assert sorted(down["stopped"]) == ["dolt", "mlflow"]
    after = cli("services", "status", "--json", cwd=tmp_path, check=False)
    assert after.returncode == 3  # not running: status says so with a non-zero exit
