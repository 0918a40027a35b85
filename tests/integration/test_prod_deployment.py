"""infra/prod-up.sh: every server asks for credentials, and each credential opens only its part.

Checked through independent clients (mysql-connector, HTTP, docker CLI), never the kit itself.
"""

from __future__ import annotations

import json
import pwd
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mysql.connector
import pytest
import requests

from tests.prod import SCRIPT, ProdDeployment


def connect(prod: ProdDeployment, user: str, password: str, database: str | None = None) -> Any:
    return mysql.connector.connect(
        host=prod.dolt_host,
        port=prod.dolt_port,
        user=user,
        password=password,
        database=prod.database if database is None else database or None,
        autocommit=True,
    )


def sql(conn: Any, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    cur = conn.cursor()
    cur.execute(statement, params or None)
    return list(cur.fetchall()) if cur.with_rows else []


@pytest.fixture
def scratch() -> str:
    return "t_" + uuid.uuid4().hex[:10]


# -- Dolt


@pytest.mark.parametrize("role", ["sync", "merge", "read"])
def test_dolt_refuses_a_wrong_password(prod_deployment: ProdDeployment, role: str) -> None:
    user, _ = prod_deployment.dolt_user(role)  # type: ignore[arg-type]
    with pytest.raises(mysql.connector.Error, match=r"[Aa]ccess denied"):
        connect(prod_deployment, user, "not-the-password")


def test_dolt_root_needs_its_password(prod_deployment: ProdDeployment) -> None:
    with pytest.raises(mysql.connector.Error, match=r"[Aa]ccess denied"):
        connect(prod_deployment, "root", "")
    with connect(prod_deployment, "root", prod_deployment.env["PK_DOLT_ROOT_PASSWORD"]) as root:
        databases = {row[0] for row in sql(root, "SHOW DATABASES")}
        assert {prod_deployment.database, "platform_kit"} <= databases
        # Sync streams large inserts with LOAD DATA LOCAL INFILE.
        assert sql(root, "SELECT @@GLOBAL.local_infile")[0][0] in (1, "1", "ON")


def test_sync_user_writes_only_sheets_branches(
    prod_deployment: ProdDeployment, scratch: str
) -> None:
    user, password = prod_deployment.dolt_user("sync")
    branch = f"sheets/{scratch}"
    with connect(prod_deployment, user, password) as conn:
        with pytest.raises(mysql.connector.Error, match="permissions on branch `main`"):
            sql(conn, f"CREATE TABLE {scratch} (id INT PRIMARY KEY)")
        with pytest.raises(mysql.connector.Error):
            sql(conn, f"CALL DOLT_BRANCH('other/{scratch}')")
        sql(conn, "CALL DOLT_BRANCH(%s)", (branch,))
    # Dolt (1.86) checks CREATE DATABASE against the session's current database, where kit_sync
    # holds CREATE; from no database it is refused, as the kit users' grants intend.
    with (
        connect(prod_deployment, user, password, "") as conn,
        pytest.raises(mysql.connector.Error, match="denied"),
    ):
        sql(conn, f"CREATE DATABASE {scratch}")
    try:
        with connect(prod_deployment, user, password, f"{prod_deployment.database}/{branch}") as c:
            sql(c, f"CREATE TABLE {scratch} (id INT PRIMARY KEY)")
            sql(c, f"INSERT INTO {scratch} VALUES (1)")
            sql(c, "CALL DOLT_COMMIT('-Am', 'sync test')")
    finally:
        with connect(prod_deployment, user, password) as conn:
            sql(conn, "CALL DOLT_BRANCH('-D', %s)", (branch,))


def test_merge_user_writes_main_and_read_user_only_reads(
    prod_deployment: ProdDeployment, scratch: str
) -> None:
    merge_user, merge_password = prod_deployment.dolt_user("merge")
    read_user, read_password = prod_deployment.dolt_user("read")
    branch = f"test/{scratch}"
    # kit_merge may write any branch: proven on a scratch branch, so main stays as the tests
    # that share this deployment expect it.
    with connect(prod_deployment, merge_user, merge_password) as conn:
        sql(conn, "CALL DOLT_BRANCH(%s)", (branch,))
    try:
        db = f"{prod_deployment.database}/{branch}"
        with connect(prod_deployment, merge_user, merge_password, db) as conn:
            sql(conn, f"CREATE TABLE {scratch} (id INT PRIMARY KEY)")
            sql(conn, "CALL DOLT_COMMIT('-Am', 'merge-user test')")
        with connect(prod_deployment, read_user, read_password, db) as conn:
            assert sql(conn, f"SELECT COUNT(*) FROM {scratch}") == [(0,)]
            with pytest.raises(mysql.connector.Error):
                sql(conn, f"INSERT INTO {scratch} VALUES (1)")
            with pytest.raises(mysql.connector.Error):
                sql(conn, "CALL DOLT_BRANCH(%s)", (f"x/{scratch}",))
    finally:
        with connect(prod_deployment, merge_user, merge_password) as conn:
            sql(conn, "CALL DOLT_BRANCH('-D', %s)", (branch,))
    with (
        connect(prod_deployment, read_user, read_password) as conn,
        pytest.raises(mysql.connector.Error),
    ):
        sql(conn, f"CREATE TABLE {scratch} (id INT PRIMARY KEY)")


@pytest.mark.parametrize("role", ["sync", "merge", "read"])
def test_every_kit_user_may_claim_once(prod_deployment: ProdDeployment, role: str) -> None:
    user, password = prod_deployment.dolt_user(role)  # type: ignore[arg-type]
    key = f"test:{role}:{uuid.uuid4().hex}"
    with connect(prod_deployment, user, password, "platform_kit") as conn:
        sql(conn, "INSERT INTO claims (`key`, claimed_at) VALUES (%s, NOW(6))", (key,))
        # Dolt answers errno 1062 as a DatabaseError (SQLSTATE HY000), not an IntegrityError.
        with pytest.raises(mysql.connector.Error) as duplicate:
            sql(conn, "INSERT INTO claims (`key`, claimed_at) VALUES (%s, NOW(6))", (key,))
        assert duplicate.value.errno == 1062
        assert sql(conn, "SELECT COUNT(*) FROM claims WHERE `key` = %s", (key,)) == [(1,)]
        with pytest.raises(mysql.connector.Error):
            sql(conn, "DELETE FROM claims WHERE `key` = %s", (key,))


# -- MLflow


def test_mlflow_wants_credentials(prod_deployment: ProdDeployment) -> None:
    url = f"{prod_deployment.mlflow_uri}/api/2.0/mlflow/experiments/search"
    params = {"max_results": "1"}
    user = prod_deployment.env["MLFLOW_TRACKING_USERNAME"]
    password = prod_deployment.env["MLFLOW_TRACKING_PASSWORD"]
    assert requests.get(url, params=params, timeout=30).status_code == 401
    assert requests.get(url, params=params, auth=(user, "wrong"), timeout=30).status_code == 401
    assert requests.get(url, params=params, auth=(user, password), timeout=30).status_code == 200


def test_mlflow_kit_user_is_no_admin_but_manages_what_it_creates(
    prod_deployment: ProdDeployment, scratch: str
) -> None:
    base = f"{prod_deployment.mlflow_uri}/api/2.0/mlflow"
    kit = (
        prod_deployment.env["MLFLOW_TRACKING_USERNAME"],
        prod_deployment.env["MLFLOW_TRACKING_PASSWORD"],
    )
    admin = (
        prod_deployment.env["PK_MLFLOW_ADMIN_USERNAME"],
        prod_deployment.env["PK_MLFLOW_ADMIN_PASSWORD"],
    )
    users = requests.get(f"{base}/users/get", params={"username": kit[0]}, auth=admin, timeout=30)
    assert users.status_code == 200 and users.json()["user"]["is_admin"] is False
    # Creating users is the admin's business.
    assert (
        requests.post(
            f"{base}/users/create", json={"username": scratch, "password": "x" * 12}, auth=kit
        ).status_code
        == 403
    )
    created = requests.post(f"{base}/experiments/create", json={"name": scratch}, auth=kit)
    assert created.status_code == 200, created.text
    experiment = created.json()["experiment_id"]
    model = requests.post(f"{base}/registered-models/create", json={"name": scratch}, auth=kit)
    assert model.status_code == 200, model.text
    assert requests.delete(f"{base}/registered-models/delete", json={"name": scratch}, auth=kit).ok
    assert requests.post(
        f"{base}/experiments/delete", json={"experiment_id": experiment}, auth=kit
    ).ok


# -- the registry


def test_registry_wants_credentials(prod_deployment: ProdDeployment) -> None:
    url = f"http://{prod_deployment.registry}/v2/"
    user = prod_deployment.env["PK_REGISTRY_USERNAME"]
    password = prod_deployment.env["PK_REGISTRY_PASSWORD"]
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=(user, "wrong"), timeout=10).status_code == 401
    assert requests.get(url, auth=(user, password), timeout=10).status_code == 200


# -- the runner user


@pytest.fixture
def runner(prod_deployment: ProdDeployment) -> Iterator[pwd.struct_passwd]:
    yield pwd.getpwnam(prod_deployment.runner_user)


def as_runner(runner: pwd.struct_passwd, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", runner.pw_name, "--", "env", f"HOME={runner.pw_dir}", *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_runner_is_not_root_and_reaches_docker(
    prod_deployment: ProdDeployment, runner: pwd.struct_passwd
) -> None:
    assert runner.pw_uid != 0
    assert prod_deployment.env["PK_RUNNER_HOME"] == runner.pw_dir != "/root"
    assert as_runner(runner, "id", "-u").stdout.strip() == str(runner.pw_uid)
    assert "docker" in as_runner(runner, "id", "-nG").stdout.split()
    version = as_runner(runner, "docker", "version", "--format", "{{.Server.Version}}")
    assert version.returncode == 0, version.stderr
    config = json.loads(as_runner(runner, "cat", f"{runner.pw_dir}/.docker/config.json").stdout)
    assert prod_deployment.registry in config.get("auths", {})
    # Its HOME and docker credentials are its own.
    assert as_runner(runner, "test", "-r", "/root/.cache").returncode != 0


def test_runner_venv_serves_jobs_run_as_the_runner(
    prod_deployment: ProdDeployment, runner: pwd.struct_passwd
) -> None:
    """`prod-up.sh runner-venv`: the runner user's own Python sees the kit's dependencies."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "runner-venv"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    venv = prod_deployment.env["PK_RUNNER_VENV"]
    probe = as_runner(
        runner, f"{venv}/bin/python", "-c", "import mlflow, mysql.connector, docker; print('ok')"
    )
    assert probe.stdout.strip() == "ok", probe.stderr
    assert as_runner(runner, f"{runner.pw_dir}/bin/act", "--version").returncode == 0
    # The kit itself is not in the snapshot under it: each job installs its own checkout.
    snapshot = Path("/opt/platform-kit/runner-site-packages")
    assert (snapshot / ".complete").exists()
    assert not list(snapshot.glob("*platform_kit*"))
