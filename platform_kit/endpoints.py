"""Where the Dolt and MLflow servers answer, and whether they are healthy; no process code.

A server named in platform.yaml (``dolt.server``, ``mlflow.tracking_uri``, or
``$MLFLOW_TRACKING_URI``) is *external*: the kit only connects to it. Otherwise the server is
*local*: ``platform-kit services up`` (:mod:`platform_kit.services`) starts it and records its port
in ``.platform/services.json``, which this module reads. Starting and stopping live in
:mod:`platform_kit.services`; nothing here spawns or signals a process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from platform_kit import env
from platform_kit.config import Config, DoltServer
from platform_kit.errors import ConfigError, ServiceError

STATE_FILE = "services.json"
LOCAL_HOST = "127.0.0.1"


class Service(StrEnum):
    """A server the kit can start on a developer machine (and only connects to elsewhere)."""

    DOLT = "dolt"
    MLFLOW = "mlflow"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    healthy: bool
    managed: bool  # started by 'services up' (and so stopped by 'services down')
    pid: int | None = None
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


# ---------------------------------------------------------------------------- local or external


def is_local(config: Config, service: Service) -> bool:
    """True when platform.yaml (and the environment) name no server: the kit runs its own."""
    if service is Service.DOLT:
        return config.dolt.server is None
    return not (env.get(env.MLFLOW_TRACKING_URI) or config.mlflow.tracking_uri)


def refuse_local_in_actions(config: Config, services: list[Service]) -> None:
    """Under GitHub Actions, a server the kit would start locally is a configuration error.

    A job's workspace is thrown away when it ends, so a local server there would "succeed"
    against a throwaway database.

    Raises:
        ConfigError: naming the key to set, for the first such service.
    """
    if not env.in_github_actions():
        return
    for service in services:
        if not is_local(config, service):
            continue
        if service is Service.DOLT:
            raise ConfigError(
                f"{config.path}: dolt.server is null, and under GitHub Actions the kit starts no "
                "local Dolt server",
                hint="set dolt.server to the shared server, e.g. mysql://kit_read@dolt.example:3306",
            )
        raise ConfigError(
            f"{config.path}: mlflow.tracking_uri is null and MLFLOW_TRACKING_URI is unset, and "
            "under GitHub Actions the kit starts no local MLflow server",
            hint="set mlflow.tracking_uri (or MLFLOW_TRACKING_URI) to the shared MLflow server",
        )


# ---------------------------------------------------------------------------- addresses


def dolt_endpoint(config: Config) -> DoltServer:
    """Where the Dolt SQL server answers: the configured one, or the local one 'up' started.

    For a configured server, ``$DOLT_USER`` replaces the user its URL names (each CI job logs in
    as its own role). The local server has only ``root``, so a DOLT_USER meant for the shared
    server does not break a local project.

    Raises:
        ServiceError: the server is local and not running.
    """
    server = config.dolt.server
    if server is not None:
        user = env.get(env.DOLT_USER)
        return DoltServer(server.host, server.port, user) if user else server
    record = read_state(config).get(Service.DOLT)
    if not record:
        raise ServiceError(
            "the local Dolt server is not running", hint="run 'platform-kit services up'"
        )
    return DoltServer(host=LOCAL_HOST, port=int(record["port"]), user="root")


def dolt_password(config: Config) -> str:
    """DOLT_PASSWORD for a configured server; the local server's root has none.

    Sending a password to a passwordless root is refused, so a DOLT_PASSWORD meant for the shared
    server must not break a local project.
    """
    return (env.get(env.DOLT_PASSWORD) or "") if config.dolt.server is not None else ""


def mlflow_uri(config: Config) -> str:
    """The MLflow tracking URI: $MLFLOW_TRACKING_URI, the configured one, or the local server.

    Raises:
        ServiceError: the server is local and not running.
    """
    uri = env.get(env.MLFLOW_TRACKING_URI) or config.mlflow.tracking_uri
    if uri:
        return uri
    record = read_state(config).get(Service.MLFLOW)
    if not record:
        raise ServiceError(
            "the local MLflow server is not running", hint="run 'platform-kit services up'"
        )
    return f"http://{LOCAL_HOST}:{record['port']}"


def dolt_url(endpoint: DoltServer) -> str:
    return f"mysql://{endpoint.user}@{endpoint.host}:{endpoint.port}"


# ---------------------------------------------------------------------------- health


def dolt_healthy(
    endpoint: DoltServer, password: str = "", timeout: float = 5.0
) -> tuple[bool, str]:
    """(answers, one line for people): connects and asks for Dolt's version."""
    import mysql.connector

    try:
        conn = mysql.connector.connect(
            host=endpoint.host,
            port=endpoint.port,
            user=endpoint.user,
            password=password,
            connection_timeout=max(1, int(timeout)),
        )
    except mysql.connector.Error as exc:
        return False, env.redact(str(exc))
    try:
        cur = conn.cursor()
        cur.execute("SELECT dolt_version()")
        row = cur.fetchone()
        version = str(row[0]) if row else "?"  # type: ignore[index]
        return True, f"dolt {version}"
    finally:
        conn.close()


def mlflow_healthy(uri: str, timeout: float = 5.0) -> tuple[bool, str]:
    """(answers, one line for people): MLflow's ``/health`` endpoint."""
    import requests  # loaded by the commands that ask, not by --help

    try:
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout)
    except requests.RequestException as exc:
        return False, type(exc).__name__
    return response.ok, f"HTTP {response.status_code}"


def service_status(config: Config, service: Service) -> ServiceStatus:
    """One service's URL and health, whether the kit started it or not."""
    local = is_local(config, service)
    record = read_state(config).get(service, {})
    if local and not record:
        return ServiceStatus(service.value, "", False, True, None, "not started")
    if service is Service.DOLT:
        endpoint = dolt_endpoint(config)
        ok, detail = dolt_healthy(endpoint, dolt_password(config))
        url = dolt_url(endpoint)
    else:
        url = mlflow_uri(config)
        ok, detail = mlflow_healthy(url)
    return ServiceStatus(service.value, url, ok, local, record.get("pid"), detail)


def services_status(config: Config) -> list[ServiceStatus]:
    """Dolt's and MLflow's URL and health, whether the kit started them or not."""
    return [service_status(config, service) for service in Service]


# ---------------------------------------------------------------------------- the state file


def state_path(config: Config) -> Path:
    return config.state_dir / STATE_FILE


def read_state(config: Config) -> dict[str, dict[str, Any]]:
    """The local servers 'services up' recorded: name -> {pid, port, url}."""
    path = state_path(config)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and "pid" in v and "port" in v}
