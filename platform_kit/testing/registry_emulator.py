"""A local emulator of a registry that wants a login: the token flow of GHCR, Docker Hub, Harbor.

The real ``registry`` binary speaks only htpasswd (Basic) authentication on a plain machine; the
hosted registries answer 401 with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``
and hand out tokens from a separate realm. This server does both, over a real socket:

- ``GET /token?service=S&scope=repository:NAME:pull`` with Basic credentials (or none, when
  ``anonymous_pull``) answers ``{"token": ...}``; ``POST /token`` takes an OAuth2
  ``refresh_token`` grant (docker's identity tokens);
- ``HEAD``/``GET /v2/NAME/manifests/REF`` demand a token whose scope covers NAME (``bearer``
  mode) or Basic credentials (``basic`` mode), and serve the manifests given to :meth:`put`;
- writes (``POST /v2/NAME/blobs/uploads/``, ``PUT`` of the upload's ``Location?digest=``,
  ``PUT`` of a manifest) demand a token whose scope also has ``push``; ``HEAD``/``GET`` of
  ``/v2/NAME/blobs/DIGEST`` serve what was uploaded. A digest that does not match is refused.

``omit_digest`` leaves ``Docker-Content-Digest`` out of manifest answers, as some registries do.
Every request is recorded (:attr:`RegistryEmulator.requests`) with the scheme of its
``Authorization`` header, never the secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_UPLOAD = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<id>[^/]*)$")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    scheme: str  # "basic", "bearer" or "" (no Authorization header)
    status: int


@dataclass
class RegistryEmulator:
    """The emulated registry; ``start()`` serves it from a thread, ``stop()`` ends it."""

    mode: Literal["bearer", "basic"] = "bearer"
    username: str = "robot"
    password: str = "s3cret-pass"
    refresh_token: str = "identity-token-1"
    service: str = "registry.test"
    anonymous_pull: bool = False
    omit_digest: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._manifests: dict[tuple[str, str], bytes] = {}
        self._blobs: dict[tuple[str, str], bytes] = {}
        self._uploads: set[str] = set()
        self._tokens: dict[str, set[str]] = {}  # token -> repositories it may pull
        self._pushers: dict[str, set[str]] = {}  # token -> repositories it may push to
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle

    def start(self) -> RegistryEmulator:
        emulator = self

        class Handler(_Handler):
            owner = emulator

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="registry-emulator",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RegistryEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``host:port``, the registry part of an image name."""
        return f"{self.host}:{self.port}"

    # -- test helpers

    def put(self, repo: str, tag: str, manifest: bytes | None = None) -> str:
        """Store a manifest under ``repo:tag``; returns its digest."""
        body = manifest or json.dumps({"schemaVersion": 2, "tag": tag}).encode()
        with self._lock:
            self._manifests[(repo, tag)] = body
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def blob(self, repo: str, digest: str) -> bytes | None:
        with self._lock:
            return self._blobs.get((repo, digest))

    def manifest(self, repo: str, tag: str) -> bytes | None:
        with self._lock:
            return self._manifests.get((repo, tag))

    def revoke_tokens(self) -> None:
        """Forget every issued token, as if they had expired."""
        with self._lock:
            self._tokens.clear()
            self._pushers.clear()

    # -- the API

    def handle(
        self, method: str, raw: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(raw)
        authorization = headers.get("authorization", "")
        if url.path == "/token":
            status, out_headers, out = self._token(method, parse_qs(url.query), authorization, body)
        else:
            status, out_headers, out = self._v2(
                method, url.path, authorization, parse_qs(url.query), body
            )
        with self._lock:
            scheme = authorization.partition(" ")[0].lower()
            self.requests.append(Recorded(method, url.path, scheme, status))
        return status, out_headers, out

    def _basic_ok(self, authorization: str) -> bool:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value).decode()
        except ValueError:
            return False
        return decoded == f"{self.username}:{self.password}"

    def _token(
        self, method: str, query: dict[str, list[str]], authorization: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "POST":  # OAuth2 refresh-token grant
            form = parse_qs(body.decode())
            query = {**query, **form}
            granted = form.get("grant_type") == ["refresh_token"] and form.get("refresh_token") == [
                self.refresh_token
            ]
        elif authorization:
            granted = self._basic_ok(authorization)
        else:
            granted = self.anonymous_pull
        if not granted:
            return 401, {}, _error("UNAUTHORIZED", "bad credentials")
        repos = {
            m.group(1)
            for scope in query.get("scope", [])
            for m in re.finditer(r"repository:([^:]+):[a-z,]*pull", scope)
        }
        pushers = {  # an anonymous caller may pull at most
            m.group(1)
            for scope in query.get("scope", [])
            for m in re.finditer(r"repository:([^:]+):[a-z,]*push", scope)
            if method == "POST" or authorization
        }
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = repos
            self._pushers[token] = pushers
        return 200, {}, json.dumps({"token": token, "expires_in": 300}).encode()

    def _challenge(self, repo: str, write: bool) -> dict[str, str]:
        if self.mode == "basic":
            return {"WWW-Authenticate": 'Basic realm="Registry Realm"'}
        realm = f"http://{self.address}/token"
        actions = "pull,push" if write else "pull"  # as distribution's registry asks
        return {
            "WWW-Authenticate": f'Bearer realm="{realm}",service="{self.service}",'
            f'scope="repository:{repo}:{actions}"'
        }

    def _v2(
        self,
        method: str,
        path: str,
        authorization: str,
        query: dict[str, list[str]],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        found = _MANIFEST.match(path) or _BLOB.match(path) or _UPLOAD.match(path)
        repo = found.group("repo") if found else ""
        write = method in ("POST", "PUT", "PATCH", "DELETE")
        scheme, _, value = authorization.partition(" ")
        if self.mode == "basic":
            allowed = self._basic_ok(authorization)
        else:
            with self._lock:
                granted = (self._pushers if write else self._tokens).get(value, set())
                allowed = scheme.lower() == "bearer" and repo in granted
        if path == "/v2/" and allowed:
            return 200, {}, b"{}"
        if not allowed:
            return (
                401,
                self._challenge(repo, write),
                _error("UNAUTHORIZED", "authentication required"),
            )
        if found is None:
            return 404, {}, _error("NOT_FOUND", "not found")
        if found.re is _UPLOAD:
            return self._upload(method, repo, found.group("id"), query, body)
        if found.re is _BLOB:
            if method not in ("GET", "HEAD"):
                return 405, {}, _error("UNSUPPORTED", "method not allowed")
            with self._lock:
                blob = self._blobs.get((repo, found.group("digest")))
            if blob is None:
                return 404, {}, _error("BLOB_UNKNOWN", "blob unknown")
            return 200, {"Docker-Content-Digest": found.group("digest")}, blob
        if method == "PUT":
            digest = self.put(repo, found.group("ref"), body)
            return 201, {"Docker-Content-Digest": digest}, b""
        if method not in ("GET", "HEAD"):
            return 405, {}, _error("UNSUPPORTED", "method not allowed")
        with self._lock:
            manifest = self._manifests.get((repo, found.group("ref")))
        if manifest is None:
            return 404, {}, _error("MANIFEST_UNKNOWN", "manifest unknown")
        out = {"Content-Type": MANIFEST_TYPE}
        if not self.omit_digest:
            out["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(manifest).hexdigest()
        return 200, out, manifest

    def _upload(
        self, method: str, repo: str, upload: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """A monolithic upload: ``POST`` opens it, ``PUT ?digest=`` stores the whole blob."""
        if method == "POST" and not upload:
            upload = secrets.token_hex(8)
            with self._lock:
                self._uploads.add(upload)
            # A relative Location with a query, as distribution's registry answers.
            return 202, {"Location": f"/v2/{repo}/blobs/uploads/{upload}?_state=x"}, b""
        with self._lock:
            known = upload in self._uploads
        if method != "PUT" or not known:
            return 404, {}, _error("BLOB_UPLOAD_UNKNOWN", "upload unknown")
        digest = (query.get("digest") or [""])[0]
        if digest != "sha256:" + hashlib.sha256(body).hexdigest():
            return 400, {}, _error("DIGEST_INVALID", "digest does not match")
        with self._lock:
            self._uploads.discard(upload)
            self._blobs[(repo, digest)] = body
        return 201, {"Docker-Content-Digest": digest}, b""


def _error(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class _Handler(BaseHTTPRequestHandler):
    owner: RegistryEmulator

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, out = self.owner.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        if "Content-Type" not in out_headers:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_HEAD = do_POST = do_PUT = _serve

    def log_message(self, format: str, *args: object) -> None:  # quiet in tests
        pass
