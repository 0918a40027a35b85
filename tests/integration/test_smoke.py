"""Smoke tests: the real Dolt, MLflow, Docker engine and registry answer as the kit expects."""

from __future__ import annotations

import io
import tarfile
import uuid
from typing import Any

import mysql.connector
from mlflow.tracking import MlflowClient

from tests.conftest import REGISTRY, Services


def test_dolt_sql_commit_and_log(services: Services) -> None:
    conn = mysql.connector.connect(host=services.dolt.host, port=services.dolt.port, user="root")
    cur = conn.cursor()
    db = f"smoke_{uuid.uuid4().hex[:8]}"
    cur.execute(f"CREATE DATABASE {db}")
    cur.execute(f"USE {db}")
    cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
    cur.execute("INSERT INTO t VALUES (%s, %s)", (1, "one"))
    cur.execute("CALL DOLT_COMMIT('-Am', %s)", ("smoke commit",))
    (commit_hash,) = cur.fetchone()  # type: ignore[misc]
    cur.execute("SELECT commit_hash, message FROM dolt_log LIMIT 1")
    assert cur.fetchone() == (commit_hash, "smoke commit")
    conn.close()


def test_mlflow_run_round_trip(services: Services) -> None:
    client = MlflowClient(services.mlflow_uri)
    experiment = client.create_experiment(f"smoke-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment, tags={"git.sha": "abc"})
    client.log_metric(run.info.run_id, "accuracy", 0.75)
    client.set_terminated(run.info.run_id)
    back = client.get_run(run.info.run_id)
    assert back.data.metrics["accuracy"] == 0.75
    assert back.data.tags["git.sha"] == "abc"


def test_docker_build_push_pull(docker_client: Any) -> None:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (
            ("Dockerfile", b"FROM scratch\nCOPY hello.txt /\n"),
            ("hello.txt", uuid.uuid4().hex.encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    repo = f"{REGISTRY}/platform-kit-smoke"
    image, _ = docker_client.images.build(
        fileobj=context, custom_context=True, tag=f"{repo}:t", rm=True
    )
    errors = [
        line
        for line in docker_client.images.push(repo, tag="t", stream=True, decode=True)
        if "error" in line
    ]
    assert not errors
    docker_client.images.remove(f"{repo}:t", force=True)
    pulled = docker_client.images.pull(repo, tag="t")
    assert pulled.id == image.id
