"""The services lifecycle on real servers: up twice, status, down, restart with old data."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import mysql.connector
import pytest
from mlflow.tracking import MlflowClient

from platform_kit import endpoints
from platform_kit import services as svc
from platform_kit.config import Config
from tests.conftest import Services, require, write_project


@pytest.fixture
def project(tmp_path: Path) -> Config:
    try:
        svc.find_dolt()
    except Exception as exc:
        require("dolt binary", str(exc))
    return write_project(tmp_path / "proj")


def test_up_twice_status_down_and_restart_keeps_data(project: Config) -> None:
    try:
        first = {s.name: s for s in svc.services_up(project)}
        assert all(s.healthy and s.managed for s in first.values())
        assert first["dolt"].url.startswith("mysql://root@127.0.0.1:")
        assert first["mlflow"].url.startswith("http://127.0.0.1:")
        recorded = json.loads((project.state_dir / "services.json").read_text())
        assert recorded["dolt"]["url"] == first["dolt"].url

        again = {s.name: s for s in svc.services_up(project)}  # idempotent: same processes
        assert {n: s.pid for n, s in again.items()} == {n: s.pid for n, s in first.items()}

        endpoint = endpoints.dolt_endpoint(project)
        conn = mysql.connector.connect(host=endpoint.host, port=endpoint.port, user="root")
        conn.cursor().execute("CREATE DATABASE keepme")
        conn.close()
        MlflowClient(endpoints.mlflow_uri(project)).create_experiment("kept-experiment")
        database = project.state_dir / "mlflow" / "mlflow.db"

        assert sorted(svc.services_down(project)) == ["dolt", "mlflow"]
        assert [s.detail for s in endpoints.services_status(project)] == [
            "not started",
            "not started",
        ]
        assert svc.services_down(project) == []  # nothing left to stop

        # A database from before WAL mode (or set back by hand) is put in it on the next start.
        assert _journal_mode(database) == "wal"
        with contextlib.closing(sqlite3.connect(database)) as db:
            db.execute("PRAGMA journal_mode=DELETE")
        svc.services_up(project)
        assert _journal_mode(database) == "wal"
        endpoint = endpoints.dolt_endpoint(project)
        conn = mysql.connector.connect(host=endpoint.host, port=endpoint.port, user="root")
        cur = conn.cursor()
        cur.execute("SHOW DATABASES")
        assert ("keepme",) in cur.fetchall()
        conn.close()
        assert MlflowClient(endpoints.mlflow_uri(project)).get_experiment_by_name("kept-experiment")
    finally:
        svc.services_down(project)


def _journal_mode(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])


def test_external_servers_are_never_started(tmp_path: Path, services: Services) -> None:
    dolt = services.dolt
    project = write_project(
        tmp_path / "external",
        f"""\
        mlflow: {{tracking_uri: "{services.mlflow_uri}"}}
        """,
    )
    text = project.path.read_text().replace(
        "dolt: {database: training}",
        f"dolt: {{database: training, server: 'mysql://root@{dolt.host}:{dolt.port}'}}",
    )
    project.path.write_text(text)
    from platform_kit.config import load_config

    project = load_config(project.path)
    statuses = svc.services_up(project)
    assert all(s.healthy and not s.managed for s in statuses)
    assert (
        not (project.state_dir / "services.json").exists()
        or json.loads((project.state_dir / "services.json").read_text()) == {}
    )
    assert svc.services_down(project) == []
