"""A real Dolt remote for tests: a second ``dolt sql-server`` serving its remotesapi, with an
admin password and a kit user, as DoltLab (built on the same remotesapi) would be.

``start_remote`` runs it in a directory of its own; ``start_clone_server`` runs the kit's local
server (the one that holds the clone) with ``DOLT_REMOTE_PASSWORD`` in its environment, since
Dolt reads that password in the server process that makes the remote calls.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mysql.connector

from platform_kit import services as svc
from platform_kit.config import Config
from platform_kit.endpoints import Service

ADMIN_PASSWORD = "remote-admin-pw"
KIT_USER = "kit_remote"
KIT_PASSWORD = "kit-remote-pw"


@dataclass
class RemoteServer:
    host: str
    port: int  # SQL, for the reviewer (admin) to merge on the remote's side
    api_port: int  # remotesapi, for clone/fetch/push
    pid: int
    root: Path

    def url(self, database: str, user: str | None = KIT_USER) -> str:
        who = f"{user}@" if user else ""
        return f"http://{who}{self.host}:{self.api_port}/{database}"

    def connect(self, database: str | None = None) -> Any:
        return mysql.connector.connect(
            host=self.host,
            port=self.port,
            user="root",
            password=ADMIN_PASSWORD,
            database=database,
            autocommit=True,
            use_pure=True,
        )

    def sql(self, database: str | None, *statements: str) -> list[Any]:
        """Run statements as the remote's admin; the rows of the last one."""
        rows: list[Any] = []
        with contextlib.closing(self.connect(database)) as conn:
            cur = conn.cursor()
            for statement in statements:
                cur.execute(statement)
                rows = list(cur.fetchall()) if cur.with_rows else []
        return rows

    def head(self, database: str, branch: str = "main") -> str:
        rows = self.sql(database, f"SELECT hash FROM dolt_branches WHERE name = '{branch}'")
        return str(rows[0][0]) if rows else ""

    def create_database(self, database: str) -> None:
        self.sql(None, f"CREATE DATABASE `{database}`")


def start_remote(root: Path) -> RemoteServer:
    """Start the remote server (admin root/ADMIN_PASSWORD, user KIT_USER with SUPER, which Dolt
    asks of a pusher, and CLONE_ADMIN, which it asks of a reader)."""
    dolt = svc.find_dolt()
    home, data = root / "home", root / "data"
    home.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    child = {**os.environ, "DOLT_ROOT_PATH": str(home), "DOLT_ROOT_PASSWORD": ADMIN_PASSWORD}
    child.pop("DOLT_REMOTE_PASSWORD", None)
    for key, value in (
        ("user.name", "reviewer"),
        ("user.email", "reviewer@localhost"),
        ("metrics.disabled", "true"),
    ):
        subprocess.run(
            [dolt, "config", "--global", "--add", key, value],
            env=child,
            check=True,
            capture_output=True,
        )
    port, api_port = svc.free_port(), svc.free_port()
    log = open(root / "dolt.log", "ab")  # noqa: SIM115 - the server keeps it
    process = subprocess.Popen(
        [
            dolt,
            "sql-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--remotesapi-port",
            str(api_port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=child,
        cwd=data,
        start_new_session=True,
    )
    server = RemoteServer("127.0.0.1", port, api_port, process.pid, root)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.sql(None, "SELECT 1")
            break
        except mysql.connector.Error:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"remote dolt sql-server did not start: {(root / 'dolt.log').read_text()[-500:]}"
                ) from None
            time.sleep(0.3)
    server.sql(
        None,
        f"CREATE USER IF NOT EXISTS '{KIT_USER}'@'%' IDENTIFIED BY '{KIT_PASSWORD}'",
        f"GRANT ALL PRIVILEGES ON *.* TO '{KIT_USER}'@'%' WITH GRANT OPTION",
        f"GRANT CLONE_ADMIN ON *.* TO '{KIT_USER}'@'%'",
    )
    return server


def stop(pid: int) -> None:
    svc._stop(pid)


@contextlib.contextmanager
def remote_password(value: str | None) -> Iterator[None]:
    """DOLT_REMOTE_PASSWORD set (or unset) while a server is spawned: it inherits it."""
    before = os.environ.get("DOLT_REMOTE_PASSWORD")
    if value is None:
        os.environ.pop("DOLT_REMOTE_PASSWORD", None)
    else:
        os.environ["DOLT_REMOTE_PASSWORD"] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DOLT_REMOTE_PASSWORD", None)
        else:
            os.environ["DOLT_REMOTE_PASSWORD"] = before


def start_clone_server(
    config: Config, password: str | None = KIT_PASSWORD, mlflow: bool = False
) -> None:
    """The project's local servers ('services up'), Dolt's with ``password`` as
    DOLT_REMOTE_PASSWORD."""
    only = [Service.DOLT, Service.MLFLOW] if mlflow else [Service.DOLT]
    with remote_password(password):
        statuses = svc.services_up(config, only=only)
    bad = [s.name for s in statuses if s.name in {o.value for o in only} and not s.healthy]
    if bad:
        raise RuntimeError(f"local servers not healthy: {bad}")
