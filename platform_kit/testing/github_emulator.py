"""A local emulator of the few GitHub REST endpoints the kit calls through PyGithub.

GitHub cannot be reached from the test machines, so the real PyGithub client talks to this
server over a real socket instead (``Github(base_url="http://127.0.0.1:PORT/api/v3")``). It serves:

- ``GET  /repos/{owner}/{repo}``
- ``GET  /repos/{owner}/{repo}/actions/workflows/{file or id}``
- ``POST /repos/{owner}/{repo}/actions/workflows/{file or id}/dispatches``
- ``GET  /repos/{owner}/{repo}/actions/workflows/{file or id}/runs`` and ``.../actions/runs``
- ``POST /repos/{owner}/{repo}/dispatches``

Every object carries full ``url`` fields, as PyGithub needs. Every request is recorded
(:attr:`GitHubEmulator.requests`, without the token) so tests can assert on what was sent.
``legacy_dispatch=True`` behaves like servers that predate run details (422 for the
``return_run_details`` field, then 204), and :meth:`GitHubEmulator.fail_next` injects errors.

Run it by hand with ``python -m platform_kit.testing.github_emulator --port 8765``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(_REPO + r"$"), "get_repo"),
    ("GET", re.compile(_REPO + r"/actions/workflows/(?P<wf>[^/]+)$"), "get_workflow"),
    ("POST", re.compile(_REPO + r"/actions/workflows/(?P<wf>[^/]+)/dispatches$"), "dispatch"),
    ("GET", re.compile(_REPO + r"/actions/workflows/(?P<wf>[^/]+)/runs$"), "list_runs"),
    ("GET", re.compile(_REPO + r"/actions/runs$"), "list_runs"),
    ("POST", re.compile(_REPO + r"/dispatches$"), "repository_dispatch"),
]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the /api/v3 prefix and the query
    query: dict[str, list[str]]
    body: Any  # parsed JSON, or None
    authorized: bool
    status: int  # what the emulator answered


@dataclass
class Run:
    id: int
    workflow_id: int
    event: str
    ref: str
    inputs: dict[str, Any]
    created_at: str


@dataclass
class _Failure:
    status: int
    message: str
    remaining: int
    method: str | None
    path_contains: str | None


@dataclass
class GitHubEmulator:
    """The emulated GitHub; ``start()`` serves it from a thread, ``stop()`` ends it.

    Args:
        repository: the one repository that exists (``owner/name``).
        token: the token requests must carry (``Authorization: token ...``); None accepts any.
        workflows: workflow file names that exist; None: any ``*.yml``/``*.yaml`` name exists.
        legacy_dispatch: answer dispatches without run details, like older GitHub servers.
    """

    repository: str = "octo/platform"
    token: str | None = "test-token"
    workflows: Iterable[str] | None = None
    legacy_dispatch: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._workflow_ids: dict[str, int] = {}
        self._known = None if self.workflows is None else set(self.workflows)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> GitHubEmulator:
        emulator = self

        class Handler(_Handler):
            owner = emulator

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="github-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GitHubEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The base URL to give PyGithub (GitHub Enterprise style)."""
        return f"{self.root}/api/v3"

    # -- test helpers

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        message: str = "Server Error",
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``."""
        with self._lock:
            self._failures.append(_Failure(status, message, times, method, path_contains))

    def received(self, method: str | None = None, path_contains: str = "") -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and path_contains in r.path
            ]

    def repository_dispatches(self) -> list[dict[str, Any]]:
        """Bodies of the repository_dispatch events accepted, oldest first."""
        return [
            r.body
            for r in self.received("POST")
            if r.path.endswith("/dispatches") and "/actions/" not in r.path and r.status < 300
        ]

    def workflow_dispatches(self) -> list[dict[str, Any]]:
        """Bodies of the workflow_dispatch requests received (accepted or not), oldest first."""
        return [r.body for r in self.received("POST", "/actions/workflows/") if r.authorized]

    # -- the API

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        path = url.path.removeprefix("/api/v3")
        query = parse_qs(url.query)
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return 400, {"message": "Problems parsing JSON"}
        auth = headers.get("authorization", "")
        authorized = self.token is None or auth in (f"token {self.token}", f"Bearer {self.token}")
        status, response = self._answer(method, path, query, parsed, authorized)
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, parsed, authorized, status))
        return status, response

    def _answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, authorized: bool
    ) -> tuple[int, Any]:
        with self._lock:
            failure = self._take_failure(method, path)
        if failure is not None:
            return failure.status, {"message": failure.message}
        if not authorized:
            return 401, {"message": "Bad credentials"}
        for verb, pattern, name in _ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                params = match.groupdict()
                if f"{params['owner']}/{params['name']}" != self.repository:
                    return 404, {"message": "Not Found"}
                result: tuple[int, Any] = getattr(self, f"_{name}")(params, query, body)
                return result
        return 404, {"message": "Not Found"}

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method not in (None, method):
                continue
            if failure.path_contains is not None and failure.path_contains not in path:
                continue
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.remove(failure)
            return failure
        return None

    def _repo_url(self) -> str:
        return f"{self.api_url}/repos/{self.repository}"

    def _get_repo(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, Any]:
        owner, name = self.repository.split("/")
        return 200, {
            "id": 1,
            "name": name,
            "full_name": self.repository,
            "private": True,
            "default_branch": "main",
            "owner": {
                "login": owner,
                "id": 1,
                "type": "Organization",
                "url": f"{self.api_url}/users/{owner}",
            },
            "url": self._repo_url(),
            "html_url": f"{self.root}/{self.repository}",
        }

    def _workflow(self, ref: str) -> tuple[int, str] | None:
        """(id, file name) of a workflow named by file name or id."""
        with self._lock:
            if ref.isdigit():
                for file, wid in self._workflow_ids.items():
                    if wid == int(ref):
                        return wid, file
                return None
            if not ref.endswith((".yml", ".yaml")):
                return None
            if self._known is not None and ref not in self._known:
                return None
            wid = self._workflow_ids.setdefault(ref, 1000 + len(self._workflow_ids))
            return wid, ref

    def _workflow_json(self, wid: int, file: str) -> dict[str, Any]:
        return {
            "id": wid,
            "node_id": f"W_{wid}",
            "name": file.rsplit(".", 1)[0],
            "path": f".github/workflows/{file}",
            "state": "active",
            "url": f"{self._repo_url()}/actions/workflows/{wid}",
            "html_url": f"{self.root}/{self.repository}/blob/main/.github/workflows/{file}",
            "badge_url": f"{self.root}/{self.repository}/workflows/{file}/badge.svg",
        }

    def _get_workflow(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, Any]:
        found = self._workflow(params["wf"])
        if found is None:
            return 404, {"message": "Not Found"}
        return 200, self._workflow_json(*found)

    def _dispatch(self, params: dict[str, str], query: Any, body: Any) -> tuple[int, Any]:
        found = self._workflow(params["wf"])
        if found is None:
            return 404, {"message": "Not Found"}
        if not isinstance(body, dict) or not isinstance(body.get("ref"), str):
            return 422, {"message": 'Invalid request.\n\n"ref" wasn\'t supplied.'}
        allowed = {"ref", "inputs"} | (set() if self.legacy_dispatch else {"return_run_details"})
        for key in body:
            if key not in allowed:
                return 422, {"message": f'Invalid request.\n\n"{key}" is not a permitted key.'}
        inputs = body.get("inputs") or {}
        if len(inputs) > 25:
            return 422, {"message": "Invalid request. Too many inputs (25 at most)."}
        run = self._add_run(found[0], "workflow_dispatch", body["ref"], inputs)
        if body.get("return_run_details"):
            return 200, {
                "workflow_run_id": run.id,
                "run_url": f"{self._repo_url()}/actions/runs/{run.id}",
                "html_url": self._run_html(run),
            }
        return 204, None

    def _add_run(self, workflow_id: int, event: str, ref: str, inputs: dict[str, Any]) -> Run:
        with self._lock:
            run = Run(
                id=5000 + len(self.runs),
                workflow_id=workflow_id,
                event=event,
                ref=ref,
                inputs=dict(inputs),
                created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            self.runs.append(run)
            return run

    def _run_html(self, run: Run) -> str:
        return f"{self.root}/{self.repository}/actions/runs/{run.id}"

    def _list_runs(
        self, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        workflow_id: int | None = None
        if "wf" in params:
            found = self._workflow(params["wf"])
            if found is None:
                return 404, {"message": "Not Found"}
            workflow_id = found[0]

        def wanted(run: Run) -> bool:
            if workflow_id is not None and run.workflow_id != workflow_id:
                return False
            if "event" in query and run.event != query["event"][0]:
                return False
            if "branch" in query and run.ref != query["branch"][0]:
                return False
            created = query.get("created", [""])[0]
            return not (created.startswith(">=") and run.created_at < created[2:])

        with self._lock:
            runs = [r for r in reversed(self.runs) if wanted(r)]
        return 200, {
            "total_count": len(runs),
            "workflow_runs": [
                {
                    "id": r.id,
                    "name": "run",
                    "event": r.event,
                    "head_branch": r.ref,
                    "status": "queued",
                    "workflow_id": r.workflow_id,
                    "created_at": r.created_at,
                    "url": f"{self._repo_url()}/actions/runs/{r.id}",
                    "html_url": self._run_html(r),
                }
                for r in runs
            ],
        }

    def _repository_dispatch(
        self, params: dict[str, str], query: Any, body: Any
    ) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("event_type"):
            return 422, {"message": 'Invalid request.\n\n"event_type" wasn\'t supplied.'}
        if len(str(body["event_type"])) > 100:
            return 422, {"message": "event_type is too long (maximum is 100 characters)"}
        payload = body.get("client_payload") or {}
        if len(payload) > 10:
            return 422, {"message": "No more than 10 properties are allowed; 11 were supplied."}
        if len(json.dumps(payload)) >= 64 * 1024:
            return 422, {"message": "client_payload is too large"}
        return 204, None


class _Handler(BaseHTTPRequestHandler):
    owner: GitHubEmulator
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload = self.owner.handle(self.command, self.path, headers, body)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve
    do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--repository", default="octo/platform")
    parser.add_argument("--token", default=None, help="the token to require (default: any)")
    parser.add_argument("--legacy-dispatch", action="store_true")
    args = parser.parse_args(argv)
    emulator = GitHubEmulator(
        repository=args.repository,
        token=args.token,
        legacy_dispatch=args.legacy_dispatch,
        host=args.host,
        port=args.port,
    ).start()
    print(f"GitHub emulator for {args.repository} at {emulator.api_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
