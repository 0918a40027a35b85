"""The Docker engine, through the docker SDK: build and push the runtime image, pull bases, and
load release images assembled on the host.

The SDK reports push (and pull) errors inside the response stream instead of raising, so every
stream is scanned; SDK exceptions are translated into :class:`ReleaseError` here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from platform_kit.errors import ImageNotFoundError, ReleaseError, ServiceError

log = logging.getLogger(__name__)


def _follow(what: str, start: Callable[[], Iterable[Any]], hint: str | None = None) -> None:
    """Run a streamed push or pull; the engine reports most failures inside the stream."""
    import docker.errors

    try:
        error = stream_error(start())
    except docker.errors.APIError as exc:
        raise ReleaseError(f"{what} failed: {exc.explanation}") from exc
    if error is not None:
        raise ReleaseError(f"{what} failed: {error}", hint=hint)


def stream_error(lines: Iterable[Mapping[str, Any]]) -> str | None:
    """The first error reported in a decoded push/pull stream, or None (consumes the stream)."""
    for line in lines:
        if "error" in line or "errorDetail" in line:
            detail = line.get("errorDetail") or {}
            return str(line.get("error") or detail.get("message") or detail)
        if "status" in line:
            log.debug("docker: %s %s", line.get("id", ""), line["status"])
    return None


class Engine:
    """A Docker engine; the client is injected for tests, else taken from the environment."""

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
        except docker.errors.ImageNotFound:
            return False
        return True

    def build(
        self,
        context: Path,
        tag: str,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
        *,
        no_cache: bool = False,
    ) -> str:
        """Build ``context`` (legacy builder) as ``tag``; return the image id."""
        import docker.errors

        try:
            image, stream = self.client.images.build(
                path=str(context),
                tag=tag,
                buildargs=dict(buildargs),
                labels=dict(labels or {}),
                rm=True,
                forcerm=True,
                pull=False,  # ensure_base_image pulled the base (BASE_IMAGE) just before
                nocache=no_cache,
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
        """Push ``repository:tag``; raises ReleaseError on any error the stream reports."""
        _follow(
            f"pushing {repository}:{tag}",
            lambda: self.client.images.push(repository, tag=tag, stream=True, decode=True),
            hint="check that the registry accepts pushes ('docker login', disk space)",
        )

    def pull(self, repository: str, tag: str) -> None:
        _follow(
            f"pulling {repository}:{tag}",
            lambda: self.client.api.pull(repository, tag=tag, stream=True, decode=True),
        )

    def pull_reference(self, reference: str) -> None:
        """Pull ``repo[:tag]`` or ``repo@sha256:...`` (a base image)."""
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(reference)
        self.pull(repository, tag or "latest")

    def tag(self, source: str, repository: str, tag: str) -> None:
        self._image(source).tag(repository, tag=tag)

    def load(self, archive: Path) -> None:
        """``docker load`` a docker-archive (the engine skips the layers it already has).

        Raises:
            ReleaseError: the engine refused the archive.
        """
        import docker.errors

        try:
            with open(archive, "rb") as stream:
                for chunk in self.client.api.load_image(stream):
                    if "error" in chunk or "errorDetail" in chunk:
                        raise ReleaseError(f"loading {archive.name} failed: {chunk}")
        except docker.errors.APIError as exc:
            raise ReleaseError(f"loading an image failed: {exc.explanation}") from exc

    def image_id(self, name: str) -> str:
        return str(self._image(name).id)

    def config(self, name: str) -> dict[str, Any]:
        """An image config (as the registry holds it) rebuilt from what the engine tells:
        its run config, architecture, OS, layers and build history."""
        image = self._image(name)
        attrs = image.attrs
        history = []
        for step in reversed(image.history()):
            entry: dict[str, Any] = {"created_by": step.get("CreatedBy", "")}
            if step.get("Comment"):
                entry["comment"] = step["Comment"]
            if not step.get("Size"):
                entry["empty_layer"] = True
            history.append(entry)
        return {
            "architecture": attrs.get("Architecture", "amd64"),
            "os": attrs.get("Os", "linux"),
            "created": attrs.get("Created", ""),
            "config": attrs.get("Config") or {},
            "rootfs": {"type": "layers", "diff_ids": list(attrs["RootFS"]["Layers"])},
            "history": history,
        }

    def labels(self, name: str) -> dict[str, str]:
        return dict(self._image(name).labels or {})

    def image_size(self, name: str) -> int:
        return int(self._image(name).attrs.get("Size", 0))

    def _image(self, name: str) -> Any:
        import docker.errors

        try:
            return self.client.images.get(name)
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFoundError(f"the engine has no image {name}") from exc
