"""Every environment variable platform-kit reads, in one place."""

from __future__ import annotations

import os
from pathlib import Path

GOOGLE_APPLICATION_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"
PLATFORM_KIT_GOOGLE_API_URL = "PLATFORM_KIT_GOOGLE_API_URL"
GITHUB_TOKEN = "GITHUB_TOKEN"
GITHUB_API_URL = "GITHUB_API_URL"
GITHUB_REPOSITORY = "GITHUB_REPOSITORY"
GITHUB_SHA = "GITHUB_SHA"
GITHUB_RUN_ID = "GITHUB_RUN_ID"
GITHUB_WORKFLOW = "GITHUB_WORKFLOW"
GITHUB_OUTPUT = "GITHUB_OUTPUT"
GITHUB_ACTIONS = "GITHUB_ACTIONS"
# The user and password for dolt.server; DOLT_USER replaces the user its URL names.
DOLT_USER = "DOLT_USER"
DOLT_PASSWORD = "DOLT_PASSWORD"
# dolt.remote's user (replaces one in its URL) and password. Dolt reads DOLT_REMOTE_PASSWORD in
# the process of the sql-server that holds the clone: the kit passes it to the local one it starts.
DOLT_REMOTE_USER = "DOLT_REMOTE_USER"
DOLT_REMOTE_PASSWORD = "DOLT_REMOTE_PASSWORD"
MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"
# Read by MLflow's client itself, for a server behind authentication; the kit only redacts them.
MLFLOW_TRACKING_TOKEN = "MLFLOW_TRACKING_TOKEN"
MLFLOW_TRACKING_USERNAME = "MLFLOW_TRACKING_USERNAME"
MLFLOW_TRACKING_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
# The cache shared by projects: the dolt binary (install-dolt.sh), wheels and models of releases.
PLATFORM_KIT_CACHE = "PLATFORM_KIT_CACHE"
# Where docker keeps config.json (its credentials); the registry client reads it as docker does.
DOCKER_CONFIG = "DOCKER_CONFIG"
# Set by CI: a test whose service is missing fails instead of skipping.
CI = "CI"

# Values of these are never printed, logged, or recorded in MLflow.
SECRET_VARIABLES = (
    GOOGLE_APPLICATION_CREDENTIALS,
    GITHUB_TOKEN,
    DOLT_PASSWORD,
    DOLT_REMOTE_PASSWORD,
    MLFLOW_TRACKING_TOKEN,
    MLFLOW_TRACKING_PASSWORD,
)


def get(name: str, default: str | None = None) -> str | None:
    """Read one variable; empty strings count as unset."""
    value = os.environ.get(name)
    return value if value else default


def cache_dir() -> Path:
    """Where the kit caches across projects (dolt binary, wheels, release models):
    $PLATFORM_KIT_CACHE, else ``~/.cache/platform-kit``, as infra/*.sh and the Makefile agree."""
    return Path(get(PLATFORM_KIT_CACHE) or Path.home() / ".cache" / "platform-kit")


def in_github_actions() -> bool:
    """True inside a GitHub Actions job (and under act), where the kit starts no local server."""
    return get(GITHUB_ACTIONS) == "true"


def secret_values() -> list[str]:
    """The current values of secret variables (for redaction)."""
    values = [os.environ.get(name, "") for name in SECRET_VARIABLES]
    return [v for v in values if len(v) >= 4]


def redact(text: str) -> str:
    """Replace every secret value in ``text`` with ``***``."""
    for value in secret_values():
        text = text.replace(value, "***")
    return text
