"""Start and stop the local Dolt and MLflow servers: the only module that runs processes.

``services up`` starts ``dolt sql-server`` and ``mlflow server`` on free loopback ports, with
their data under the project's ``.platform/``, waits until both answer, and records them in
``.platform/services.json``. Servers named in platform.yaml (``dolt.server``,
``mlflow.tracking_uri``) are external: the kit never starts or stops them. Finding a server and
asking whether it is healthy is :mod:`platform_kit.endpoints`' job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from platform_kit import env
from platform_kit.config import Config, DoltServer
from platform_kit.endpoints import (
    LOCAL_HOST,
    Service,
    ServiceStatus,
    dolt_healthy,
    is_local,
    mlflow_healthy,
    read_state,
    services_status,
    state_path,
)
from platform_kit.errors import ServiceError
from platform_kit.jsonio import write_json_atomic

START_TIMEOUT = 90.0


# ---------------------------------------------------------------------------- locating


def find_dolt() -> str:
    """The dolt binary: on PATH, or where infra/install-dolt.sh caches it."""
    for candidate in (shutil.which("dolt"), env.cache_dir() / "bin" / "dolt"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServiceError("no dolt binary found", hint="run 'bash infra/install-dolt.sh'")


# ---------------------------------------------------------------------------- lifecycle


def services_up(config: Config, only: Collection[Service] = tuple(Service)) -> list[ServiceStatus]:
    """Start the local servers (of ``only``) that are not already running and healthy.

    Idempotent; servers named in platform.yaml are never started. Returns every service's status.
    """
    state = read_state(config)
    logs = config.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    starters = {
        Service.DOLT: (_start_dolt, _dolt_check),
        Service.MLFLOW: (_start_mlflow, _mlflow_check),
    }
    for service in Service:
        if service not in only or not is_local(config, service):
            continue
        start, check = starters[service]
        if not _alive_and_healthy(state.get(service), check):
            state[service.value] = start(config, logs, _port_for(state.get(service)))
            _write_state(config, state)
    return services_status(config)


def services_down(config: Config) -> list[str]:
    """Stop the servers 'up' started (never external ones); returns the names stopped."""
    state = read_state(config)
    stopped = []
    for name in (Service.MLFLOW.value, Service.DOLT.value):
        record = state.pop(name, None)
        if record and _stop(int(record["pid"])):
            stopped.append(name)
    _write_state(config, state)
    return stopped


def _dolt_check(record: dict[str, Any]) -> bool:
    return dolt_healthy(DoltServer(LOCAL_HOST, int(record["port"]), "root"))[0]


def _mlflow_check(record: dict[str, Any]) -> bool:
    return mlflow_healthy(f"http://{LOCAL_HOST}:{record['port']}")[0]


def _alive_and_healthy(
    record: dict[str, Any] | None, check: Callable[[dict[str, Any]], bool]
) -> bool:
    return bool(record) and _pid_alive(int(record["pid"])) and check(record)  # type: ignore[index, arg-type]


def _port_for(record: dict[str, Any] | None) -> int:
    """The port a crashed server had, when it is still free: clients that hold its URL (a
    training run retrying its calls) reconnect to the restarted server."""
    if record:
        with socket.socket() as sock:
            # As servers bind: a crashed one leaves TIME_WAIT connections on its port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", int(record["port"])))
            except OSError:
                pass
            else:
                return int(record["port"])
    return free_port()


def _start_dolt(config: Config, logs: Path, port: int) -> dict[str, Any]:
    dolt = find_dolt()
    data_dir = config.state_dir / "dolt"
    home = config.state_dir / "dolt-home"  # DOLT_ROOT_PATH: keeps the user's ~/.dolt untouched
    data_dir.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "DOLT_ROOT_PATH": str(home)}
    if not (home / ".dolt" / "config_global.json").exists():
        settings = (
            ("user.name", "platform-kit"),
            ("user.email", "platform-kit@localhost"),
            ("metrics.disabled", "true"),  # no usage events: the machine may be offline
        )
        for key, value in settings:
            subprocess.run(
                [dolt, "config", "--global", "--add", key, value],
                env=child_env,
                check=True,
                capture_output=True,
            )
    pid = _spawn(
        [
            dolt,
            "sql-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        logs / "dolt.log",
        child_env,
        data_dir,
    )
    record = {"pid": pid, "port": port, "url": f"mysql://root@127.0.0.1:{port}"}
    _wait(Service.DOLT, lambda: _dolt_check(record), pid, logs / "dolt.log")
    _allow_local_infile(port)
    return record


def _allow_local_infile(port: int) -> None:
    """Let sync stream large inserts with LOAD DATA LOCAL INFILE (off by default, as in MySQL)."""
    import mysql.connector

    with mysql.connector.connect(host="127.0.0.1", port=port, user="root") as conn:
        conn.cursor().execute("SET GLOBAL local_infile = 1")


def _start_mlflow(config: Config, logs: Path, port: int) -> dict[str, Any]:
    root = config.state_dir / "mlflow"
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    _write_ahead_log(root / "mlflow.db")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        # Gunicorn serves MLflow's Flask app directly: half the CPU per request of the default
        # (uvicorn and FastAPI around the same app), and the kit uses no FastAPI-only route.
        # Sync workers, one request each: a busy worker accepts no connection, so two requests
        # sent at once (a snapshot's two searches, pages read ahead) always run on both cores;
        # threaded workers could take both into one process and its one GIL. The timeout lets a
        # large artifact upload finish.
        "--gunicorn-opts",
        "--timeout 600",
    ]
    # The kit uses no MLflow server jobs (GenAI evaluation); skipping them saves five processes.
    # Nor its usage telemetry (an event per request, sent to the internet).
    child_env = {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    pid = _spawn(command, logs / "mlflow.log", child_env, root)
    record = {"pid": pid, "port": port, "url": f"http://127.0.0.1:{port}"}
    _wait(Service.MLFLOW, lambda: _mlflow_check(record), pid, logs / "mlflow.log")
    return record


def _write_ahead_log(database: Path) -> None:
    """Put the MLflow database in SQLite's WAL mode (kept in the file; a new file is made so).

    A commit then appends to one log instead of writing, syncing and deleting a rollback
    journal: measured, a sixth less server CPU and a fifth less time per request.
    """
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        db.execute("PRAGMA journal_mode=WAL")


def _spawn(command: list[str], log_path: Path, child_env: dict[str, str], cwd: Path) -> int:
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            cwd=cwd,
            start_new_session=True,  # outlives the CLI, like a daemon
        )
    return process.pid


def _wait(name: str, check: Callable[[], bool], pid: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            tail = log_path.read_text(errors="replace").splitlines()[-5:]
            raise ServiceError(f"{name} server exited while starting: {' | '.join(tail)}")
        if check():
            return
        time.sleep(0.3)
    _stop(pid)
    raise ServiceError(
        f"{name} server did not become healthy in {START_TIMEOUT:.0f}s; see {log_path}"
    )


def _stop(pid: int, timeout: float = 15.0) -> bool:
    if not _pid_alive(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # the server's whole session: mlflow forks workers
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this very process counts as gone.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_state(config: Config, state: dict[str, dict[str, Any]]) -> None:
    write_json_atomic(state_path(config), state)
