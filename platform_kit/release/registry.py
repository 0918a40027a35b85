"""What the registry holds, asked over the Registry HTTP API v2.

"Is this tag pushed?" is a question for the registry itself: an image in the local engine proves
nothing about what production can pull.
"""

from __future__ import annotations

import requests

from platform_kit.errors import ReleaseError, ServiceError
from platform_kit.retry import retry

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


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


class Registry:
    """The registry behind ``release.image``: plain HTTP on loopback, HTTPS elsewhere."""

    def __init__(self, image: str, timeout: float = 10.0) -> None:
        self.host, self.repo = split_image(image)
        scheme = "http" if self.host.startswith(("127.", "localhost", "[::1]")) else "https"
        self.base = f"{scheme}://{self.host}/v2/{self.repo}"
        self.timeout = timeout

    def has(self, tag: str) -> bool:
        return self.digest(tag) is not None

    def digest(self, tag: str) -> str | None:
        """The manifest digest of ``tag``, or None when the registry does not have it.

        Raises:
            ServiceError: the registry does not answer (after retries).
            ReleaseError: it answers with an error other than 404.
        """

        def head() -> requests.Response:
            return requests.head(
                f"{self.base}/manifests/{tag}",
                headers={"Accept": MANIFEST_TYPES},
                timeout=self.timeout,
            )

        try:
            response = retry(
                head,
                transient=lambda e: isinstance(e, requests.ConnectionError | requests.Timeout),
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
                f"registry {self.host} answered HTTP {response.status_code} for {self.repo}:{tag}",
                hint="check the registry's logs and your credentials ('docker login')",
            )
        return response.headers.get("Docker-Content-Digest", "present")
