"""MLflow's REST API in plain JSON, without importing mlflow: the kit's searches and single
reads, and what ``train`` writes.

Importing mlflow takes about a second, and its client turns every answer into protobuf objects
(a second more for a search of 1,000 models) and spends a third more CPU per request. A command
whose answer is two searches, such as ``release build`` finding its release already pushed,
should not pay that, nor should a ``train`` of a few models. The REST API
(``/api/2.0/mlflow/...``, and ``/api/2.0/mlflow-artifacts/...`` for the server's artifact
proxy) is MLflow's public, versioned interface.

Credentials and TLS come from the environment MLflow's own client reads:
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic auth), ``MLFLOW_TRACKING_TOKEN``
(bearer), ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH`` and
``MLFLOW_TRACKING_CLIENT_CERT_PATH``; retries from its ``MLFLOW_HTTP_REQUEST_*`` settings. Under
any other auth (an ``MLFLOW_TRACKING_AUTH`` plugin), or for a URI that is not http(s),
:func:`rest_api` answers None and the callers go through MLflow's client.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import json
import math
import mimetypes
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from platform_kit import env
from platform_kit.errors import ServiceError, TrackingError
from platform_kit.retry import retry
from platform_kit.tracking.client import HTTP_POOL, http_setting
from platform_kit.tracking.registry import RegisteredModel, VersionInfo

if TYPE_CHECKING:
    import requests

API = "/api/2.0/mlflow"
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED"}
T = TypeVar("T")
_PROXIED = "mlflow-artifacts:/"  # a run's artifacts under the server's own proxy (no host given)
_SPLIT_FROM = 200  # registered models from which a search is read in pages asked for at once


class _Transient(Exception):
    """An answer worth asking again (a 5xx, 429, or a transient MLflow error code)."""


class MlflowRest:
    """GET and POST on one MLflow server's REST API; JSON in and out, retried with backoff."""

    def __init__(self, uri: str, session: requests.Session | None = None) -> None:
        import requests

        self.uri = uri.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = float(http_setting("MLFLOW_HTTP_REQUEST_TIMEOUT"))
        if session is None:
            adapter = _adapter()
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
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

    def post(
        self, endpoint: str, body: Mapping[str, Any], what: str, *, attempts: int = 5
    ) -> dict[str, Any]:
        return self._send("POST", endpoint, what, attempts=attempts, json=dict(body))

    def _send(
        self,
        method: str,
        endpoint: str,
        what: str,
        *,
        attempts: int = 5,
        upload: Path | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One request, retried while the answer is transient. ``endpoint`` is under the
        tracking API, or a path from the server's root when it starts with ``/``; ``upload``:
        a file sent as the body (opened again for each attempt)."""
        import requests

        url = f"{self.uri}{endpoint}" if endpoint.startswith("/") else f"{self.uri}{API}/{endpoint}"

        def once() -> dict[str, Any]:
            if upload is None:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            else:
                with upload.open("rb") as data:
                    response = self.session.request(
                        method, url, data=data, timeout=self.timeout, **kwargs
                    )
            try:
                body = response.json() if response.content else {}
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
            raise TrackingError(f"MLflow refused to {what}: {reason}", code=code)

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, _Transient | requests.ConnectionError | requests.Timeout)

        try:
            return retry(once, transient=transient, what=f"MLflow {what}", attempts=attempts)
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

    # -- single reads (None where MLflow answers RESOURCE_DOES_NOT_EXIST)

    def registered_model(self, name: str) -> RegisteredModel | None:
        found = self._found("registered-models/get", {"name": name}, f"read model {name!r}")
        return registered_model(found["registered_model"]) if found else None

    def model_version(self, name: str, version: int) -> VersionInfo | None:
        what = f"read version {version} of model {name!r}"
        found = self._found("model-versions/get", {"name": name, "version": str(version)}, what)
        return version_info(found["model_version"]) if found else None

    def version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        what = f"read the {alias} version of model {name!r}"
        found = self._found("registered-models/alias", {"name": name, "alias": alias}, what)
        return version_info(found["model_version"]) if found else None

    def experiment_id(self, name: str) -> str | None:
        what = f"read experiment {name!r}"
        found = self._found("experiments/get-by-name", {"experiment_name": name}, what)
        return str(found["experiment"]["experiment_id"]) if found else None

    def _found(self, endpoint: str, params: Mapping[str, Any], what: str) -> dict[str, Any] | None:
        return or_none(lambda: self.get(endpoint, params, what))

    # -- the writes of a training run

    def create_experiment(self, name: str) -> str:
        body = self.post("experiments/create", {"name": name}, f"create experiment {name!r}")
        return str(body["experiment_id"])

    def create_run(
        self, experiment_id: str, run_name: str, tags: Mapping[str, str], what: str
    ) -> tuple[str, str]:
        """A new run (running): its id and artifact URI."""
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": _now_ms(),
            "user_id": tags.get("mlflow.user", "unknown"),  # as MLflow's client sends it
            "tags": _key_values(tags),
        }
        info = self.post("runs/create", body, what)["run"]["info"]
        return str(info["run_id"]), str(info["artifact_uri"])

    def log_batch(
        self, run_id: str, params: Mapping[str, str], metrics: Mapping[str, float], what: str
    ) -> None:
        now = _now_ms()
        body = {
            "run_id": run_id,
            "params": _key_values(params),
            "metrics": [
                {"key": k, "value": _number(v), "timestamp": now, "step": 0}
                for k, v in metrics.items()
            ],
        }
        self.post("runs/log-batch", body, what)

    def finish_run(self, run_id: str, status: str, what: str) -> None:
        self.post("runs/update", {"run_id": run_id, "status": status, "end_time": _now_ms()}, what)

    def upload_artifacts(self, artifact_uri: str, directory: Path, what: str) -> bool:
        """Store every file under ``directory`` in the run's artifacts, through this server's
        artifact proxy; False, with nothing sent, when the URI is not one this server proxies
        (a bucket, another host) or MLflow's multipart uploads are on: MLflow's client does those.
        """
        if not artifact_uri.startswith(_PROXIED) or _truthy(
            os.environ.get("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD")
        ):
            return False
        root = artifact_uri.removeprefix(_PROXIED).strip("/")
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            relative = path.relative_to(directory).as_posix()
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send(
                "PUT",
                f"/api/2.0/mlflow-artifacts/artifacts/{quote(f'{root}/{relative}')}",
                what,
                upload=path,
                headers={"Content-Type": kind},
            )
        return True

    def create_registered_model(self, name: str, tags: Mapping[str, str]) -> bool:
        """False when the model exists already."""
        body = {"name": name, "tags": _key_values(tags)}
        try:
            self.post("registered-models/create", body, f"create registered model {name!r}")
        except TrackingError as exc:
            if exc.code == "RESOURCE_ALREADY_EXISTS":
                return False
            raise
        return True

    def create_model_version(
        self, name: str, source: str, run_id: str | None, tags: Mapping[str, str], what: str
    ) -> int:
        """One request, not retried: a retry must first look for the version the server may
        have made (see the registry's ``_create_version``)."""
        body = {"name": name, "source": source, "tags": _key_values(tags)}
        if run_id:
            body["run_id"] = run_id
        answer = self.post("model-versions/create", body, what, attempts=1)
        return int(answer["model_version"]["version"])

    def set_alias(self, name: str, alias: str, version: int, what: str) -> None:
        body = {"name": name, "alias": alias, "version": str(version)}
        self.post("registered-models/alias", body, what)

    def set_model_tag(self, name: str, key: str, value: str, what: str) -> None:
        self.post("registered-models/set-tag", {"name": name, "key": key, "value": value}, what)


def rest_api(uri: str) -> MlflowRest | None:
    """The REST API of the server at ``uri``, or None where MLflow's client must be used."""
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


def _adapter() -> requests.adapters.HTTPAdapter:
    """Connections retried as MLflow's own client retries them (the same ``MLFLOW_HTTP_REQUEST_*``
    settings), so that a server restarting is ridden out alike; :meth:`MlflowRest._send` retries
    whole requests on top, as :func:`~platform_kit.tracking.client.call` does for the client."""
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retries = Retry(
        total=int(http_setting("MLFLOW_HTTP_REQUEST_MAX_RETRIES")),
        backoff_factor=float(http_setting("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")),
        backoff_jitter=float(http_setting("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER")),
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # POSTs too, as MLflow's client
        raise_on_status=False,
    )
    return HTTPAdapter(pool_connections=HTTP_POOL, pool_maxsize=HTTP_POOL, max_retries=retries)


def not_found(exc: TrackingError) -> bool:
    """MLflow's "no such thing" (an alias nobody holds is INVALID_PARAMETER_VALUE there)."""
    return exc.code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower()


def or_none(read: Callable[[], T]) -> T | None:
    """What ``read`` answers, or None where MLflow says there is no such thing."""
    try:
        return read()
    except TrackingError as exc:
        if not_found(exc):
            return None
        raise


def _key_values(pairs: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def _number(value: float) -> float | str:
    """A metric value as MLflow's JSON reads it: NaN and the infinities are strings there."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _offset_token(offset: int) -> str:
    """The page token MLflow's SQL and file stores give for ``offset`` (base64 of
    ``{"offset": n}``). Not a documented format: :meth:`MlflowRest.pages` checks each guess."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _pairs(items: Any, key: str, value: str) -> dict[str, str]:
    return {str(i[key]): str(i.get(value, "")) for i in items or [] if key in i}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}
