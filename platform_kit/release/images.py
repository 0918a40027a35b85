"""Docker: building, pushing and retagging release images, and asking the registry what it has.

The docker SDK reports push errors inside the response stream instead of raising, so every
stream is scanned. The registry is asked over its HTTP API v2, which is what "is this tag
pushed?" really means (a local image proves nothing).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import requests

from platform_kit.errors import ReleaseError, ServiceError
from platform_kit.retry import retry

log = logging.getLogger(__name__)
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def split_image(image: str) -> tuple[str, str]:
    """``host:port/team/name`` -> (``host:port``, ``team/name``)."""
    host, _, repo = image.partition("/")
    if not repo or ("." not in host and ":" not in host and host != "localhost"):
        raise ReleaseError(
            f"release.image {image!r} must name its registry, e.g. 127.0.0.1:5000/{image}"
        )
    return host, repo


class Registry:
    """The registry behind ``release.image`` (HTTP API v2; plain HTTP on loopback)."""

    def __init__(self, image: str, timeout: float = 10.0) -> None:
        self.host, self.repo = split_image(image)
        scheme = "http" if self.host.startswith(("127.", "localhost")) else "https"
        self.base = f"{scheme}://{self.host}/v2/{self.repo}"
        self.timeout = timeout

    def digest(self, tag: str) -> str | None:
        """The manifest digest of ``tag``, or None when the registry does not have it."""

        def head() -> requests.Response:
            return requests.head(
                f"{self.base}/manifests/{tag}",
                headers={"Accept": MANIFEST_TYPES},
                timeout=self.timeout,
            )

        try:
            response = retry(
                head,
                transient=lambda e: isinstance(e, requests.ConnectionError),
                what=f"ask registry {self.host}",
                attempts=3,
            )
        except requests.RequestException as exc:
            raise ServiceError(
                f"the registry {self.host} is unreachable ({type(exc).__name__})",
                hint="run 'bash infra/docker-up.sh' or check release.image",
            ) from exc
        if response.status_code == 404:
            return None
        if not response.ok:
            raise ReleaseError(
                f"registry {self.host} answered HTTP {response.status_code} for {self.repo}:{tag}"
            )
        return response.headers.get("Docker-Content-Digest", "present")


class Engine:
    """A Docker engine through the docker SDK."""

    def __init__(self, client: Any | None = None) -> None:
        import docker

        try:
            self.client = client or docker.from_env(version="auto", timeout=600)
            self.client.ping()
        except Exception as exc:
            raise ServiceError(
                f"no Docker engine answers ({type(exc).__name__})",
                hint="run 'sudo bash infra/docker-up.sh' or start Docker",
            ) from exc

    def has_image(self, name: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False

    def build(
        self, context: Path, tag: str, buildargs: dict[str, str], labels: dict[str, str]
    ) -> str:
        import docker.errors

        try:
            image, stream = self.client.images.build(
                path=str(context),
                tag=tag,
                buildargs=buildargs,
                labels=labels,
                rm=True,
                forcerm=True,
                pull=False,
            )
        except docker.errors.BuildError as exc:
            tail = " | ".join(
                str(c.get("stream", c.get("error", ""))).strip() for c in list(exc.build_log)[-5:]
            )
            raise ReleaseError(f"building {tag} failed: {exc.msg} ({tail})") from exc
        except docker.errors.APIError as exc:
            raise ReleaseError(f"building {tag} failed: {exc.explanation}") from exc
        for chunk in stream:
            if "stream" in chunk:
                log.debug("build: %s", str(chunk["stream"]).rstrip())
        return str(image.id)

    def push(self, repository: str, tag: str) -> None:
        """Push and scan the stream: the SDK reports errors in it instead of raising."""
        import docker.errors

        try:
            for line in self.client.images.push(repository, tag=tag, stream=True, decode=True):
                if "error" in line or "errorDetail" in line:
                    detail = line.get("error") or line.get("errorDetail", {}).get("message")
                    raise ReleaseError(f"pushing {repository}:{tag} failed: {detail}")
        except docker.errors.APIError as exc:
            raise ReleaseError(f"pushing {repository}:{tag} failed: {exc.explanation}") from exc

    def pull(self, repository: str, tag: str) -> None:
        import docker.errors

        try:
            self.client.images.pull(repository, tag=tag)
        except docker.errors.APIError as exc:
            raise ReleaseError(f"pulling {repository}:{tag} failed: {exc.explanation}") from exc

    def tag(self, source: str, repository: str, tag: str) -> None:
        self.client.images.get(source).tag(repository, tag=tag)

    def image_size(self, name: str) -> int:
        return int(self.client.images.get(name).attrs.get("Size", 0))
