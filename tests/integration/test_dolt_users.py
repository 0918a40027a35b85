"""infra/dolt-users.py: the sync user writes only sheets/* branches; main takes only merges."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mysql.connector
import pytest

from platform_kit import endpoints
from platform_kit import services as svc
from platform_kit.config import Config, DoltServer
from tests.conftest import start_services, write_project

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "dolt-users.py"
PASSWORDS = {
    "DOLT_SYNC_PASSWORD": "sync-pw-1",
    "DOLT_MERGE_PASSWORD": "merge-pw-1",
    "DOLT_READ_PASSWORD": "read-pw-1",
}


@pytest.fixture(scope="module")
def private_dolt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoltServer]:
    """A server of its own: branch control is server-wide, so the shared one is left alone."""
    config: Config = write_project(tmp_path_factory.mktemp("dolt-users"))
    start_services(config)
    endpoint = endpoints.dolt_endpoint(config)
    with mysql.connector.connect(host=endpoint.host, port=endpoint.port, user="root") as conn:
        conn.cursor().execute("CREATE DATABASE training")
    yield endpoint
    svc.services_down(config)


def run(cursor: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    cursor.execute(sql, params or None)
    return list(cursor.fetchall()) if cursor.with_rows else []


def connect(endpoint: DoltServer, user: str, password: str, database: str = "training") -> Any:
    return mysql.connector.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=user,
        password=password,
        database=database,
        autocommit=True,
    )


def test_sync_user_is_confined_to_sheets_branches(private_dolt: DoltServer) -> None:
    for _ in range(2):  # idempotent
        subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                "--host",
                private_dolt.host,
                "--port",
                str(private_dolt.port),
            ],
            env={**os.environ, **PASSWORDS},
            check=True,
            capture_output=True,
        )
    with connect(private_dolt, "root", "") as root:
        cur = root.cursor()
        run(cur, "CREATE TABLE t (id INT PRIMARY KEY)")
        run(cur, "CALL DOLT_COMMIT('-Am', 'init')")
        main_head = run(cur, "SELECT dolt_hashof('main')")[0][0]

    with connect(private_dolt, "kit_sync", PASSWORDS["DOLT_SYNC_PASSWORD"]) as sync:
        cur = sync.cursor()
        with pytest.raises(mysql.connector.Error, match="permissions on branch `main`"):
            run(cur, "INSERT INTO t VALUES (1)")
        run(cur, "CALL DOLT_BRANCH('sheets/customers')")
        with pytest.raises(mysql.connector.Error):
            run(cur, "CALL DOLT_BRANCH('hotfix')")
    with connect(
        private_dolt, "kit_sync", PASSWORDS["DOLT_SYNC_PASSWORD"], "training/sheets/customers"
    ) as sync_branch:
        cur = sync_branch.cursor()
        run(cur, "INSERT INTO t VALUES (2)")
        run(cur, "CALL DOLT_COMMIT('-am', 'sync customers')")
        # sync records what the head holds on a tag (issue 17): the sync user may move it.
        tag = "sync/sheets/customers/customers"
        for note in ("key-1", "key-2"):
            if run(cur, "SELECT 1 FROM dolt_tags WHERE tag_name = %s", (tag,)):
                run(cur, "CALL DOLT_TAG('-d', %s)", (tag,))
            run(cur, "CALL DOLT_TAG(%s, 'HEAD', '-m', %s)", (tag, note))
        assert run(cur, "SELECT message FROM dolt_tags WHERE tag_name = %s", (tag,)) == [("key-2",)]

    with connect(private_dolt, "kit_read", PASSWORDS["DOLT_READ_PASSWORD"]) as reader:
        cur = reader.cursor()
        assert run(cur, "SELECT dolt_hashof('main')")[0][0] == main_head
        with pytest.raises(mysql.connector.Error):
            run(cur, "INSERT INTO t VALUES (3)")

    with connect(private_dolt, "kit_merge", PASSWORDS["DOLT_MERGE_PASSWORD"]) as merge:
        cur = merge.cursor()
        run(cur, "CALL DOLT_MERGE('sheets/customers')")
        assert run(cur, "SELECT id FROM t") == [(2,)]
        assert run(cur, "SELECT dolt_hashof('main')")[0][0] != main_head
