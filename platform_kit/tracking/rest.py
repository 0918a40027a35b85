"""MLflow's REST API for the kit's bulk reads, without importing mlflow.

Importing mlflow takes about a second, and its client turns every search answer into protobuf
objects (a second more for 1,000 models). A command whose answer is two searches, such as
``release build`` finding its release already pushed, should not pay that. The REST API
(``/api/2.0/mlflow/...``) is MLflow's public, versioned interface; the searches here are read as
plain JSON.

Credentials and TLS come from the environment MLflow's own client reads:
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic auth), ``MLFLOW_TRACKING_TOKEN``
(bearer), ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH`` and
``MLFLOW_TRACKING_CLIENT_CERT_PATH``. Under any other auth (an ``MLFLOW_TRACKING_AUTH`` plugin),
or for a URI that is not http(s), :func:`rest_reader` answers None and the callers read through
MLflow's client.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from platform_kit import env
from platform_kit.errors import ServiceError, TrackingError
from platform_kit.retry import retry
from platform_kit.tracking.registry import RegisteredModel, VersionInfo

if TYPE_CHECKING:
    import requests

API = "/api/2.0/mlflow"
TIMEOUT = 60.0
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED"}


class _Transient(Exception):
    """An answer worth asking again (a 5xx, 429, or a transient MLflow error code)."""


class MlflowRest:
    """GET and POST on one MLflow server's REST API; JSON in and out, retried with backoff."""

    def __init__(self, uri: str, session: requests.Session | None = None) -> None:
        import requests

        self.uri = uri.rstrip("/")
        self.session = session or requests.Session()
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        password = os.environ.get(env.MLFLOW_TRACKING_PASSWORD)
        token = os.environ.get(env.MLFLOW_TRACKING_TOKEN)
        if user and password:
            self.session.auth = (user, password)
        elif token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        if _truthy(os.environ.get("MLFLOW_TRACKING_INSECURE_TLS")):
            self.session.verify = False
        elif os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            self.session.verify = os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
        if os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
            self.session.cert = os.environ["MLFLOW_TRACKING_CLIENT_CERT_PATH"]

    def get(self, endpoint: str, params: Mapping[str, Any], what: str) -> dict[str, Any]:
        return self._send("GET", endpoint, what, params=dict(params))

    def post(self, endpoint: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        return self._send("POST", endpoint, what, json=dict(body))

    def _send(self, method: str, endpoint: str, what: str, **kwargs: Any) -> dict[str, Any]:
        import requests

        def once() -> dict[str, Any]:
            response = self.session.request(
                method, f"{self.uri}{API}/{endpoint}", timeout=TIMEOUT, **kwargs
            )
            try:
                body = response.json()
            except ValueError:
                body = {}
            if response.ok:
                return body if isinstance(body, dict) else {}
            code = str(body.get("error_code", "")) if isinstance(body, dict) else ""
            message = str(body.get("message", "")) if isinstance(body, dict) else ""
            if response.status_code >= 500 or response.status_code == 429:
                raise _Transient(f"HTTP {response.status_code} {code}".strip())
            if code in _TRANSIENT_CODES:
                raise _Transient(code)
            reason = message or f"HTTP {response.status_code} {response.reason}"
            raise TrackingError(f"MLflow refused to {what}: {reason}")

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, _Transient | requests.ConnectionError | requests.Timeout)

        try:
            return retry(once, transient=transient, what=f"MLflow {what}")
        except (_Transient, requests.RequestException) as exc:
            raise ServiceError(
                f"MLflow is unreachable while trying to {what}",
                hint="check 'platform-kit services status' or MLFLOW_TRACKING_URI",
            ) from exc

    def pages(
        self, endpoint: str, params: Mapping[str, Any], key: str, what: str
    ) -> Iterator[dict[str, Any]]:
        """Every item under ``key`` of a paged GET search."""
        token = ""
        while True:
            page = self.get(endpoint, {**params, **({"page_token": token} if token else {})}, what)
            yield from page.get(key, [])
            token = str(page.get("next_page_token", ""))
            if not token:
                return

    # -- the searches the kit reads in bulk

    def registered_models(self, filter_string: str) -> Iterator[RegisteredModel]:
        for item in self.pages(
            "registered-models/search",
            {"filter": filter_string, "max_results": 1000},
            "registered_models",
            "search registered models",
        ):
            yield registered_model(item)

    def model_versions(self, filter_string: str) -> Iterator[VersionInfo]:
        for item in self.pages(
            "model-versions/search",
            {"filter": filter_string, "max_results": 10_000},
            "model_versions",
            "search model versions",
        ):
            yield version_info(item)


def rest_reader(uri: str) -> MlflowRest | None:
    """A REST reader for ``uri``, or None where MLflow's client must do the reading."""
    if not uri.startswith(("http://", "https://")) or os.environ.get("MLFLOW_TRACKING_AUTH"):
        return None
    return MlflowRest(uri)


def version_info(item: Mapping[str, Any]) -> VersionInfo:
    """A model version as the REST API returns it."""
    return VersionInfo(
        name=str(item["name"]),
        version=int(item["version"]),
        run_id=str(item.get("run_id") or "") or None,
        source=str(item.get("source") or ""),
        tags=_pairs(item.get("tags"), "key", "value"),
        created_ms=int(item.get("creation_timestamp") or 0),
    )


def registered_model(item: Mapping[str, Any]) -> RegisteredModel:
    """A registered model as the REST API returns it."""
    latest = [version_info(v) for v in item.get("latest_versions") or []]  # newest per stage
    return RegisteredModel(
        name=str(item["name"]),
        tags=_pairs(item.get("tags"), "key", "value"),
        aliases={k: int(v) for k, v in _pairs(item.get("aliases"), "alias", "version").items()},
        latest=max(latest, key=lambda v: v.version) if latest else None,
    )


def _pairs(items: Any, key: str, value: str) -> dict[str, str]:
    return {str(i[key]): str(i.get(value, "")) for i in items or [] if key in i}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}
