"""What the registry holds, asked (and written) over the Registry HTTP API v2, with docker's
credentials.

"Is this tag pushed?" is a question for the registry itself: an image in the local engine proves
nothing about what production can pull. Releases are also assembled here, without an engine:
blobs are uploaded monolithically (``POST`` then ``PUT ?digest=``) unless the registry already
has them (``HEAD``), then the config and the manifest are put.

Authentication follows what ``docker`` does after ``docker login``, so a runner that can push can
also ask:

- credentials come from the docker config (``$DOCKER_CONFIG/config.json``, else
  ``~/.docker/config.json``): a credential helper for the host (``credHelpers``), else the
  default store (``credsStore``), else ``auths`` (base64 ``user:password``);
- a 401 names a scheme in ``WWW-Authenticate``. ``Bearer realm=...,service=...,scope=...`` sends
  the credentials to the realm for a token (GHCR, Docker Hub, Harbor, GitLab), asking for
  ``pull,push`` when the request writes; ``Basic`` sends them with each request (an htpasswd
  ``registry``).

Secrets never appear in errors or logs: a refusal names the registry and ``docker login HOST``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from platform_kit import env
from platform_kit.errors import ImageNotFoundError, ReleaseError, ServiceError
from platform_kit.retry import retry

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_WRITES = ("POST", "PUT", "PATCH", "DELETE")
UPLOAD_TIMEOUT = 600.0  # a layer of many models is one request; the registry hashes it all

# Docker Hub's credentials are filed under its legacy index URL, whatever name the image uses.
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
# Credential helpers answer this user name when the secret is an identity (refresh) token.
_IDENTITY_TOKEN_USER = "<token>"


def split_image(image: str) -> tuple[str, str]:
    """``host:port/team/name`` -> (``host:port``, ``team/name``).

    Raises:
        ReleaseError: the image names no registry host.
    """
    host, _, repo = image.partition("/")
    if not repo or ("." not in host and ":" not in host and host != "localhost"):
        raise ReleaseError(
            f"release.image {image!r} must name its registry, e.g. 127.0.0.1:5000/{image}"
        )
    return host, repo


@dataclass(frozen=True)
class Credentials:
    """A user and secret for one registry; ``repr`` hides the secret."""

    username: str
    secret: str

    @property
    def identity_token(self) -> bool:
        """True when ``secret`` is an OAuth2 refresh token rather than a password."""
        return self.username == _IDENTITY_TOKEN_USER

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret=***)"


# Runs `docker-credential-<helper> get` with the host on stdin; returns its stdout, or None when
# the helper has no entry for the host. Injectable so tests need no helper binary.
HelperRunner = Callable[[str, str], str | None]


def run_credential_helper(helper: str, server: str) -> str | None:
    """Ask ``docker-credential-<helper>`` for ``server``'s credentials, as docker does.

    Raises:
        ReleaseError: the helper is not installed or fails for another reason than "not found".
    """
    program = f"docker-credential-{helper}"
    if shutil.which(program) is None:
        raise ReleaseError(
            f"the docker config names the credential helper {helper!r}, but {program} is not on PATH",
            hint="install it, or remove it from the docker config and run 'docker login'",
        )
    done = subprocess.run(
        [program, "get"], input=server, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        # The helper protocol's answer for a host it does not know.
        if "credentials not found" in (done.stdout + done.stderr).lower():
            return None
        raise ReleaseError(
            f"{program} failed for {server} (exit {done.returncode})",
            hint=f"run 'docker login {server}' to store credentials again",
        )
    return done.stdout


class DockerConfig:
    """The credentials ``docker login`` left behind, looked up the way the docker CLI does."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        helper: HelperRunner = run_credential_helper,
    ) -> None:
        if path is None:
            directory = env.get(env.DOCKER_CONFIG)
            path = (Path(directory) if directory else Path.home() / ".docker") / "config.json"
        self.path = path
        self._helper = helper
        self._data: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                data = {}
            except (OSError, ValueError) as exc:
                raise ReleaseError(
                    f"cannot read the docker config {self.path} ({type(exc).__name__})",
                    hint="fix or remove it, then run 'docker login'",
                ) from exc
            self._data = data if isinstance(data, dict) else {}
        return self._data

    def credentials(self, host: str) -> Credentials | None:
        """``host``'s credentials, or None when docker has none for it (anonymous access)."""
        data = self._load()
        key = _DOCKER_HUB_KEY if host in _DOCKER_HUB else host
        helpers = data.get("credHelpers") or {}
        helper = helpers.get(host) or helpers.get(key) or data.get("credsStore")
        if helper:
            found = self._from_helper(str(helper), key)
            if found is not None:
                return found
        return self._from_auths(data.get("auths") or {}, host, key)

    def _from_helper(self, helper: str, server: str) -> Credentials | None:
        answer = self._helper(helper, server)
        if not answer:
            return None
        try:
            entry = json.loads(answer)
            username, secret = str(entry["Username"]), str(entry["Secret"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ReleaseError(
                f"docker-credential-{helper} gave an unreadable answer for {server}",
                hint=f"run 'docker login {server}' to store credentials again",
            ) from exc
        return Credentials(username, secret) if secret else None

    def _from_auths(self, auths: Mapping[str, Any], host: str, key: str) -> Credentials | None:
        for name, entry in auths.items():
            if _host_of(name) not in (host, _host_of(key)) or not isinstance(entry, dict):
                continue
            if entry.get("identitytoken"):
                return Credentials(_IDENTITY_TOKEN_USER, str(entry["identitytoken"]))
            if entry.get("auth"):
                try:
                    decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError) as exc:
                    raise ReleaseError(
                        f"the docker config {self.path} holds a malformed 'auth' entry for {name}",
                        hint=f"run 'docker login {host}' again",
                    ) from exc
                username, sep, password = decoded.partition(":")
                if sep:
                    return Credentials(username, password)
            if entry.get("username") and entry.get("password"):
                return Credentials(str(entry["username"]), str(entry["password"]))
        return None


def _host_of(server: str) -> str:
    """``https://host:port/v1/`` or ``host:port`` -> ``host:port`` (docker's key forms)."""
    return re.sub(r"^[a-z]+://", "", server).split("/", 1)[0]


_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="r",service="s"`` -> (``bearer``, {realm: r, service: s}).

    Quoted values may hold commas (``scope="repository:a:pull,push"``).
    """
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    return scheme.lower(), params


class Registry:
    """The registry behind ``release.image``: plain HTTP on loopback, HTTPS elsewhere.

    Args:
        image: ``release.image`` (``host[:port]/repository``).
        timeout: seconds for each HTTP request.
        config: where credentials come from; the user's docker config by default.
    """

    def __init__(
        self, image: str, timeout: float = 10.0, *, config: DockerConfig | None = None
    ) -> None:
        self.host, self.repo = split_image(image)
        scheme = "http" if self.host.startswith(("127.", "localhost", "[::1]")) else "https"
        self.base = f"{scheme}://{self.host}/v2/{self.repo}"
        self.timeout = timeout
        self._config = config or DockerConfig()
        self._session = requests.Session()
        self._authorization: str | None = None  # the header that last worked
        self._found: tuple[Credentials | None] | None = None  # looked up once, on the first 401

    def has(self, tag: str) -> bool:
        return self.digest(tag) is not None

    def digest(self, tag: str) -> str | None:
        """The manifest digest (``sha256:...``) of ``tag``, or None when the registry lacks it.

        Raises:
            ServiceError: the registry does not answer (after retries).
            ReleaseError: it refuses the credentials, or answers another error than 404.
        """
        response = self._request("HEAD", f"manifests/{tag}", tag)
        if response.status_code == 404:
            return None
        found = response.headers.get("Docker-Content-Digest")
        if found:
            return found
        # Some registries omit the header on HEAD: the digest is the hash of the manifest bytes.
        body = self._request("GET", f"manifests/{tag}", tag)
        if body.status_code == 404:
            return None
        return body.headers.get("Docker-Content-Digest") or (
            "sha256:" + hashlib.sha256(body.content).hexdigest()
        )

    def labels(self, tag: str) -> dict[str, str] | None:
        """The labels of the image ``tag`` names (from its config blob), or None when absent.

        Raises:
            ServiceError, ReleaseError: as :meth:`digest`; or the manifest is not one image's.
        """
        response = self._request("GET", f"manifests/{tag}", tag)
        if response.status_code == 404:
            return None
        try:
            config = response.json()["config"]["digest"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ReleaseError(
                f"{self.host}/{self.repo}:{tag} is not a single image's manifest",
                hint="release tags name images the kit built and pushed",
            ) from exc
        blob = self._request("GET", f"blobs/{config}", tag)
        if blob.status_code == 404:
            return None
        labels = (blob.json().get("config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    def retag(self, tag: str, new_tag: str) -> str:
        """Point ``new_tag`` at the manifest of ``tag`` inside the registry (no pull, no push of
        layers: the manifest is put again under the new name). Returns its digest.

        Raises:
            ImageNotFoundError: the registry has no ``tag``.
            ServiceError, ReleaseError: the registry is down or refuses.
        """
        got = self._request("GET", f"manifests/{tag}", tag)
        if got.status_code == 404:
            raise ImageNotFoundError(f"{self.host}/{self.repo}:{tag} is not in the registry")
        media = got.headers.get(
            "Content-Type", "application/vnd.docker.distribution.manifest.v2+json"
        )
        put = self._request(
            "PUT", f"manifests/{new_tag}", new_tag, body=got.content, content_type=media
        )
        if put.status_code == 404:
            raise ReleaseError(f"registry {self.host} refused to tag {self.repo}:{new_tag}")
        return put.headers.get("Docker-Content-Digest") or (
            "sha256:" + hashlib.sha256(got.content).hexdigest()
        )

    def manifest(self, reference: str) -> tuple[bytes, str] | None:
        """The manifest ``reference`` (a tag or digest) names and its media type, or None.

        Raises:
            ServiceError, ReleaseError: the registry is down or refuses.
        """
        got = self._request("GET", f"manifests/{reference}", reference)
        if got.status_code == 404:
            return None
        return got.content, got.headers.get("Content-Type", DOCKER_MANIFEST).split(";")[0]

    def blob(self, digest: str) -> bytes | None:
        """The content of a blob (an image config), or None when the registry lacks it."""
        got = self._request("GET", f"blobs/{digest}", digest)
        return None if got.status_code == 404 else got.content

    def has_blob(self, digest: str) -> bool:
        return self._request("HEAD", f"blobs/{digest}", digest).status_code != 404

    def upload_blob(self, digest: str, content: bytes | Path) -> None:
        """Upload a blob in one request (a monolithic upload: ``POST`` then ``PUT ?digest=``).

        Raises:
            ServiceError, ReleaseError: the registry is down, refuses, or rejects the digest.
        """
        started = self._request("POST", "blobs/uploads/", digest, body=b"")
        location = started.headers.get("Location")
        if started.status_code not in (201, 202) or not location:
            raise ReleaseError(
                f"registry {self.host} did not start an upload to {self.repo} "
                f"(HTTP {started.status_code})",
                hint="check that the registry accepts pushes",
            )
        url = urljoin(started.url, location)
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        put = self._request(
            "PUT",
            url,
            digest,
            body=content,
            content_type="application/octet-stream",
            timeout=UPLOAD_TIMEOUT,
        )
        if put.status_code != 201:
            raise ReleaseError(
                f"registry {self.host} did not store the blob {digest[:19]} "
                f"(HTTP {put.status_code})",
                hint="check the registry's logs",
            )

    def put_manifest(self, tag: str, body: bytes, media_type: str) -> str:
        """Put an image manifest under ``tag``; returns its digest.

        Raises:
            ServiceError, ReleaseError: the registry is down or refuses (e.g. a blob is missing).
        """
        put = self._request("PUT", f"manifests/{tag}", tag, body=body, content_type=media_type)
        if put.status_code not in (200, 201):
            raise ReleaseError(
                f"registry {self.host} refused the manifest {self.repo}:{tag} "
                f"(HTTP {put.status_code})",
                hint="check the registry's logs",
            )
        return put.headers.get("Docker-Content-Digest") or (
            "sha256:" + hashlib.sha256(body).hexdigest()
        )

    # -- HTTP with docker's authentication

    def _request(
        self,
        method: str,
        path: str,
        tag: str,
        *,
        body: bytes | Path | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        url = path if "://" in path else f"{self.base}/{path}"
        write = method in _WRITES

        def send() -> requests.Response:
            return self._send(
                method,
                url,
                self._authorization,
                body=body,
                content_type=content_type,
                timeout=timeout,
            )

        response = send()
        if response.status_code == 401:
            self._authorization = self._authorize(response, write=write)
            response = send()
            if response.status_code == 401:
                raise self._refused(anonymous=self._credentials() is None)
        if response.status_code == 404 or response.ok:
            return response
        if response.status_code == 403:
            verb = "push to" if write else "pull"
            raise ReleaseError(
                f"registry {self.host} denied access to {self.repo}",
                hint=f"the account 'docker login {self.host}' stored may not {verb} {self.repo}",
            )
        raise ReleaseError(
            f"registry {self.host} answered HTTP {response.status_code} for {self.repo}:{tag}",
            hint="check the registry's logs",
        )

    def _send(
        self,
        method: str,
        url: str,
        authorization: str | None,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | bytes | None = None,
        body: bytes | Path | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        headers = {"Accept": MANIFEST_TYPES}
        if authorization:
            headers["Authorization"] = authorization
        if content_type:
            headers["Content-Type"] = content_type

        def call() -> requests.Response:
            if isinstance(body, Path):  # streamed, and opened again on each attempt
                with open(body, "rb") as stream:
                    return self._session.request(
                        method,
                        url,
                        headers=headers,
                        data=stream,
                        timeout=timeout or self.timeout,
                        allow_redirects=True,
                    )
            return self._session.request(
                method,
                url,
                headers=headers,
                params=params,
                data=body if body is not None else data,
                timeout=timeout or self.timeout,
                allow_redirects=True,
            )

        try:
            return retry(
                call,
                transient=lambda e: isinstance(e, requests.ConnectionError | requests.Timeout),
                what=f"ask registry {self.host}",
                attempts=3,
            )
        except requests.RequestException as exc:
            raise ServiceError(
                f"the registry {self.host} is unreachable ({type(exc).__name__})",
                hint="run 'bash infra/docker-up.sh' or check release.image",
            ) from exc

    def _authorize(self, challenge: requests.Response, *, write: bool = False) -> str:
        """The Authorization header that answers ``challenge`` (a 401); a token for a write
        covers ``pull,push``."""
        scheme, params = parse_challenge(challenge.headers.get("WWW-Authenticate", ""))
        credentials = self._credentials()
        if scheme == "basic":
            if credentials is None or credentials.identity_token:
                raise self._refused(anonymous=True)
            return _basic(credentials)
        if scheme == "bearer" and params.get("realm"):
            return "Bearer " + self._token(params, credentials, write=write)
        raise ReleaseError(
            f"registry {self.host} asks for authentication this client does not speak "
            f"({scheme or 'no WWW-Authenticate header'})",
            hint="use a registry that offers Basic or Bearer token authentication",
        )

    def _credentials(self) -> Credentials | None:
        if self._found is None:
            self._found = (self._config.credentials(self.host),)
        return self._found[0]

    def _token(
        self, challenge: Mapping[str, str], credentials: Credentials | None, *, write: bool
    ) -> str:
        """A Bearer token from the challenge's realm (the Docker token protocol)."""
        realm = challenge["realm"]
        scope = challenge.get("scope") or f"repository:{self.repo}:pull"
        if write and "push" not in scope.rpartition(":")[2].split(","):
            scope = f"repository:{self.repo}:pull,push"
        service = challenge.get("service", "")
        if credentials is not None and credentials.identity_token:
            # OAuth2 refresh-token grant, as docker does with an identity token.
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credentials.secret,
                "service": service,
                "scope": scope,
                "client_id": "platform-kit",
            }
            answer = self._send("POST", realm, None, data=form)
        else:
            query = {"scope": scope, **({"service": service} if service else {})}
            auth = _basic(credentials) if credentials is not None else None
            answer = self._send("GET", realm, auth, params=query)
        if answer.status_code in (401, 403):
            raise self._refused(anonymous=credentials is None)
        if not answer.ok:
            raise ReleaseError(
                f"the token service of registry {self.host} answered HTTP {answer.status_code}",
                hint="check the registry's token service",
            )
        try:
            body = answer.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise ReleaseError(
                f"the token service of registry {self.host} answered without a token",
                hint="check the registry's token service",
            )
        return str(token)

    def _refused(self, *, anonymous: bool = False) -> ReleaseError:
        if anonymous:
            return ReleaseError(
                f"registry {self.host} wants credentials for {self.repo}, and the docker config "
                f"({self._config.path}) has none for it",
                hint=f"run 'docker login {self.host}' as the user that runs the kit",
            )
        return ReleaseError(
            f"registry {self.host} refused the credentials docker stored for it ({self.repo})",
            hint=f"run 'docker login {self.host}' again",
        )


def _basic(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.secret}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
