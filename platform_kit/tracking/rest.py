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

import base64
import concurrent.futures as cf
import json
import math
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
_SPLIT_FROM = 200  # registered models from which a search is read in pages asked for at once


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
        self,
        endpoint: str,
        params: Mapping[str, Any],
        key: str,
        what: str,
        *,
        ahead: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Every item under ``key`` of a paged GET search.

        ``ahead`` > 1 asks for that many pages at once, so that a server with several workers
        builds them side by side (a search of 1,000 registered models takes a worker over a
        second). The later pages are asked for with the offset tokens MLflow's stores write, and
        kept only while each page's own ``next_page_token`` is the one guessed for the next;
        otherwise paging goes on from the server's token, as without ``ahead``.
        """
        size = int(params.get("max_results") or 0)
        guesses = [_offset_token(size * i) for i in range(1, ahead)] if size else []

        def ask(token: str) -> dict[str, Any] | None:
            try:
                return self._page(endpoint, params, token, what)
            except TrackingError:
                if not token:
                    raise
                return None  # a server writing other tokens may refuse a guessed one

        if guesses:
            with cf.ThreadPoolExecutor(len(guesses) + 1) as pool:
                answers = list(pool.map(ask, ["", *guesses]))
        else:
            answers = [ask("")]
        token = ""
        for page, guess in zip(answers, [*guesses, None], strict=True):
            if page is None:
                break
            yield from page.get(key, [])
            token = str(page.get("next_page_token", ""))
            if token != guess:
                break
        while token:
            page = self._page(endpoint, params, token, what)
            yield from page.get(key, [])
            token = str(page.get("next_page_token", ""))

    def _page(
        self, endpoint: str, params: Mapping[str, Any], token: str, what: str
    ) -> dict[str, Any]:
        return self.get(endpoint, {**params, **({"page_token": token} if token else {})}, what)

    # -- the searches the kit reads in bulk

    def registered_models(self, filter_string: str, expected: int = 0) -> Iterator[RegisteredModel]:
        """The registered models the filter selects; ``expected``: about how many there are,
        to read many of them in pages asked for at once."""
        ahead = min(4, max(2, math.ceil(expected / 1000))) if expected >= _SPLIT_FROM else 1
        size = min(1000, math.ceil(expected / ahead)) if ahead > 1 else 1000
        for item in self.pages(
            "registered-models/search",
            {"filter": filter_string, "max_results": size},
            "registered_models",
            "search registered models",
            ahead=ahead,
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


def _offset_token(offset: int) -> str:
    """The page token MLflow's SQL and file stores give for ``offset`` (base64 of
    ``{"offset": n}``). Not a documented format: :meth:`MlflowRest.pages` checks each guess."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _pairs(items: Any, key: str, value: str) -> dict[str, str]:
    return {str(i[key]): str(i.get(value, "")) for i in items or [] if key in i}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}
