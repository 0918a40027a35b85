"""One way to reach MLflow: a client bound to a tracking URI, and calls retried with backoff.

MLflow errors are translated here: a server that stays unreachable becomes a
:class:`ServiceError`, a refused request a :class:`TrackingError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from platform_kit.errors import ServiceError, TrackingError
from platform_kit.retry import retry

if TYPE_CHECKING:  # mlflow takes a second to import: only commands that talk to it pay for it
    from mlflow.tracking import MlflowClient

T = TypeVar("T")
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED"}


# MLflow's own HTTP retries back off for minutes by default (7 tries, factor 2); the kit retries
# whole calls itself (see call()), so each MLflow request gets a short leash.
# The pool holds one connection per thread that talks to MLflow at once (train's loggers, the
# release's readers and downloaders: 8 each at most); MLflow's default of 10 made urllib3 warn
# "Connection pool is full, discarding connection" and reconnect.
HTTP_POOL = 32
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_HTTP_POOL_CONNECTIONS": str(HTTP_POOL),
    "MLFLOW_HTTP_POOL_MAXSIZE": str(HTTP_POOL),
    # MLflow's usage telemetry fetches a config from the internet and queues an event per call:
    # a self-hosted kit sends nothing out.
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
_QUIET = "MLFLOW_LOGGING_LEVEL"  # MLflow's INFO lines ("Created version ...") are noise here


def http_setting(name: str) -> str:
    """One of MLflow's HTTP settings (``MLFLOW_HTTP_REQUEST_*``): the user's, or the kit's default."""
    return os.environ.get(name) or _HTTP_DEFAULTS[name]


def mlflow_client(uri: str) -> MlflowClient:
    for name, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)  # a user's own setting wins
    _skip_absent_databricks_probes()
    if _QUIET not in os.environ:
        os.environ[_QUIET] = "WARNING"  # read when mlflow is first imported
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # imported already
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class LazyClient:
    """An MlflowClient made on first use, so that a command whose reads all go through
    :mod:`platform_kit.tracking.rest` never imports mlflow (a second of start-up)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client: MlflowClient | None = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = mlflow_client(self.uri)
        return getattr(self._client, name)


def lazy_client(uri: str) -> MlflowClient:
    """:class:`LazyClient`, typed as the client it stands for."""
    return cast("MlflowClient", LazyClient(uri))


def _skip_absent_databricks_probes() -> None:
    """Every MLflow request asks whether it runs in Databricks by importing modules that are not
    installed here; a failed import is not cached, so each one searches sys.path again (about
    a third of a millisecond per request). Marking a module that is absent now as absent
    (None in sys.modules, Python's own "no such module") answers the same, at once."""
    import importlib.util
    import sys

    for name in ("dbruntime", "IPython"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]


def _transient(exc: BaseException) -> bool:
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(exc, requests.ConnectionError | requests.Timeout | ConnectionError):
        return True
    if isinstance(exc, MlflowException):
        text = str(exc)
        return (
            exc.error_code in _TRANSIENT_CODES
            or "Max retries exceeded" in text
            or ("Connection refused" in text)
        )
    return False


def call(fn: Callable[[], T], what: str, *, attempts: int = 5) -> T:
    """Run one MLflow call with retries; translate the final failure into a kit error."""
    try:
        return retry(fn, transient=_transient, what=f"MLflow {what}", attempts=attempts)
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if _transient(exc):
            raise ServiceError(
                f"MLflow is unreachable while trying to {what}",
                hint="check 'platform-kit services status' or MLFLOW_TRACKING_URI",
            ) from exc
        if isinstance(exc, MlflowException):
            raise TrackingError(
                f"MLflow refused to {what}: {exc.message}", code=str(exc.error_code or "")
            ) from exc
        raise


def tags_of(obj: Any) -> dict[str, str]:
    """Tags of a run or model version as a plain dict (MLflow returns both shapes)."""
    tags = getattr(obj, "tags", None) or getattr(getattr(obj, "data", None), "tags", None) or {}
    return dict(tags)
