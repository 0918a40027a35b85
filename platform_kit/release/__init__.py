"""Releases: one image bundling every production model, tagged with the MD5 of its manifest.

Build order is the failure semantics:

1. resolve the manifest ``{model: version}`` from the alias, refusing (by name) every configured
   model with no version holding it;
2. under the project's release lock, do nothing when ``<image>:<md5>`` is already in the
   registry (so two builds at once give one image and one record);
3. build the serving image, ask the registry once more (another machine may have pushed the tag
   meanwhile: a pushed tag is never overwritten), push, scanning the stream for errors;
4. only then record the release in MLflow. A failed build or push leaves no record, and a rerun
   simply tries again.

Every backend is an argument (the CLI's :class:`platform_kit.project.Project` builds them).
The manifest is resolved from the models platform.yaml declares (families expanded at the head
of Dolt main by :func:`platform_kit.catalog.expand_models`), not from every registered model
holding the alias, so a model dropped from the config leaves the next release.
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform_kit import gitinfo
from platform_kit.config import Config
from platform_kit.errors import ImageNotFoundError, ReleaseError, UsageError
from platform_kit.release.context import ASSETS, assemble_context
from platform_kit.release.images import Engine
from platform_kit.release.manifest import canonical_json, changed_models, manifest_md5
from platform_kit.release.registry import Registry
from platform_kit.store.base import Store
from platform_kit.tracking.registry import ModelRegistry, VersionInfo
from platform_kit.tracking.releases import ReleaseLog, ReleaseRecord
from platform_kit.tracking.tags import DOLT_COMMIT

BASE_SCRIPT = ASSETS / "base" / "build.sh"
LOCAL_BASE = "platform-kit/base:bookworm"
PRODUCTION_TAG = "production"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_MD5 = "platform-kit.manifest.md5"
LABEL_MANIFEST = "platform-kit.manifest"
LABEL_DOLT_COMMIT = "platform-kit.dolt.commit"
logger = logging.getLogger(__name__)
_TAG = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class ReleaseResult:
    tag: str
    image: str
    manifest: dict[str, str]
    built: bool  # False: the tag was already in the registry, nothing was built
    pushed: bool  # the tag is in the registry now
    recorded: bool = False  # this call wrote the MLflow release record

    @property
    def reference(self) -> str:
        return f"{self.image}:{self.tag}"

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "image": self.image,
            "reference": self.reference,
            "manifest": self.manifest,
            "built": self.built,
            "pushed": self.pushed,
            "recorded": self.recorded,
        }


@dataclass(frozen=True)
class RollbackResult:
    tag: str
    image: str
    manifest: dict[str, str]
    previous_digest: str | None  # what production pointed at before, if anything

    @property
    def production(self) -> str:
        return f"{self.image}:{PRODUCTION_TAG}"

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "image": self.image,
            "reference": f"{self.image}:{self.tag}",
            "production": self.production,
            "previous_digest": self.previous_digest,
            "manifest": self.manifest,
        }


def resolve_manifest(
    config: Config, store: Store, models: ModelRegistry
) -> tuple[dict[str, str], list[VersionInfo]]:
    """``{model: version}`` of the configured models holding ``models.alias``, and those versions.

    Args:
        store: where the model families are expanded (at the head of the main branch).
        models: the registry, seen through the alias to release.

    Raises:
        ReleaseError: a configured model has no version holding the alias (all such are named),
            or no model is configured.
    """
    from platform_kit.catalog import expand_models

    names = [m.name for m in expand_models(config, store, store.resolve(config.dolt.main_branch))]
    if not names:
        raise ReleaseError(
            f"{config.path}: no models are configured, so there is nothing to release"
        )
    holding = models.productions(names)  # two paged searches, not a call per model
    found = [holding[name] for name in names]
    missing = [name for name, info in zip(names, found, strict=True) if info is None]
    if missing:
        shown = ", ".join(missing[:20]) + (
            f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        )
        raise ReleaseError(
            f"no {models.alias!r} version for: {shown}",
            hint="train them ('platform-kit train') or promote a version ('platform-kit model promote')",
        )
    versions = [info for info in found if info is not None]
    return {v.name: str(v.version) for v in versions}, versions


def build_release(
    config: Config,
    *,
    store: Store,
    models: ModelRegistry,
    releases: ReleaseLog,
    registry: Registry,
    engine: Callable[[], Engine],
    tracking_uri: str,
    push: bool = True,
    no_cache: bool = False,
) -> ReleaseResult:
    """Build, push and record the release of the models holding ``models.alias``; idempotent.

    Args:
        store, models: where the manifest is resolved (see :func:`resolve_manifest`).
        releases: where the release is recorded.
        registry: the registry behind ``release.image``.
        engine: returns the Docker engine; called only when an image must be built, so a
            release already in the registry needs none.
        tracking_uri: the MLflow server the models' artifacts are downloaded from.
        push: push the image and record the release; False only builds it locally.
        no_cache: build every layer again (the benchmark's cold build).

    Raises:
        ReleaseError: a model has no version with the alias, or building or pushing failed
            (nothing is recorded then).
        ServiceError: Docker, the registry or MLflow is down.
    """
    release = config.require_release()
    with _timed("resolve the manifest"):
        manifest, versions = resolve_manifest(config, store, models)
    tag = manifest_md5(manifest)
    git_sha = gitinfo.git_sha(config.root) or "unknown"
    dolt_commit = _dolt_commit(versions)

    def record() -> None:
        releases.record(
            tag,
            release.image,
            manifest,
            git_sha=git_sha,
            dolt_commit=dolt_commit,
            alias=models.alias,
        )

    with _lock(config):
        if registry.has(tag):
            # Only a build that died between its push and its record leaves no record: repair.
            repair = push and releases.find(tag) is None
            if repair:
                record()
            return ReleaseResult(
                tag, release.image, manifest, built=False, pushed=True, recorded=repair
            )
        docker = engine()
        base = ensure_base_image(docker, release.base_image)
        # The Dockerfile turns these into its labels in a single step (see its comments).
        buildargs = {
            "BASE_IMAGE": base,
            "REVISION": git_sha,
            "MANIFEST_MD5": tag,
            "MANIFEST": canonical_json(manifest),
            "DOLT_COMMIT": dolt_commit,
        }
        with tempfile.TemporaryDirectory(prefix="platform-kit-release-") as tmp:
            with _timed(f"assemble the context of {len(versions)} models"):
                context = assemble_context(Path(tmp), manifest, tag, versions, tracking_uri)
            with _timed(f"build {release.image}:{tag}"):
                docker.build(context, f"{release.image}:{tag}", buildargs, no_cache=no_cache)
            _check_labels(docker, f"{release.image}:{tag}", buildargs)
        if not push:
            return ReleaseResult(tag, release.image, manifest, built=True, pushed=False)
        if registry.has(tag):  # pushed by another machine during our build: keep theirs
            return ReleaseResult(tag, release.image, manifest, built=False, pushed=True)
        with _timed(f"push {release.image}:{tag}"):
            docker.push(release.image, tag)
        record()
        return ReleaseResult(tag, release.image, manifest, built=True, pushed=True, recorded=True)


def ensure_base_image(engine: Engine, base_image: str) -> str:
    """The base to build on: ``base_image`` if the engine has it, else the local Debian base.

    Nothing is pulled: where the public base is missing (no network, as here), images/base/
    builds one from Debian packages (debootstrap + docker import; cached, idempotent).

    Raises:
        ReleaseError: neither is available and the local base cannot be built.
    """
    if engine.has_image(base_image):
        return base_image
    if engine.has_image(LOCAL_BASE):
        return LOCAL_BASE
    if not BASE_SCRIPT.exists():
        raise ReleaseError(
            f"base image {base_image!r} is missing and cannot be built here",
            hint=f"docker pull {base_image}",
        )
    result = subprocess.run(["bash", str(BASE_SCRIPT), LOCAL_BASE], capture_output=True, text=True)
    if result.returncode != 0:
        raise ReleaseError(
            f"building the local base image {LOCAL_BASE} failed: {result.stderr.strip()[-300:]}",
            hint=f"run 'sudo bash {BASE_SCRIPT}' or 'docker pull {base_image}'",
        )
    return LOCAL_BASE


def list_releases(config: Config, releases: ReleaseLog, limit: int = 1000) -> list[dict[str, Any]]:
    """Releases of ``release.image`` newest first, each with the models changed against the
    one before it."""
    records = releases.all(limit)
    image = config.release.image if config.release else None
    if image is not None:
        records = [r for r in records if r.image == image]
    out = []
    for index, record in enumerate(records):
        previous = records[index + 1].manifest if index + 1 < len(records) else {}
        out.append(
            {
                "tag": record.tag,
                "image": record.image,
                "created_ms": record.created_ms,
                "git_sha": record.git_sha,
                "dolt_commit": record.dolt_commit,
                "changed": sorted(changed_models(previous, record.manifest)),
                "manifest": record.manifest,
            }
        )
    return out


def diff_releases(
    releases: ReleaseLog, tag1: str, tag2: str
) -> dict[str, tuple[str | None, str | None]]:
    """Models whose version differs between two recorded releases: name -> (in tag1, in tag2).

    Raises:
        ImageNotFoundError: a tag is not a recorded release.
    """
    first, second = (_record(releases, t) for t in (tag1, tag2))
    return changed_models(first.manifest, second.manifest)


def rollback_release(
    config: Config,
    tag: str,
    *,
    releases: ReleaseLog,
    registry: Registry,
    engine: Callable[[], Engine],
) -> RollbackResult:
    """Point ``<image>:production`` at an earlier release's image and record the rollback.

    Args:
        releases: where the rollback is recorded (and the release's manifest is read).
        registry: the registry behind ``release.image``.
        engine: returns the Docker engine; called once the tag is known to be in the registry.

    Raises:
        UsageError: ``tag`` is not an MD5 release tag.
        ImageNotFoundError: the registry has no ``<image>:<tag>``.
        ReleaseError: pulling, retagging or pushing failed (nothing is recorded then).
    """
    release = config.require_release()
    if not _TAG.match(tag):
        raise UsageError(
            f"{tag!r} is not a release tag (32 hex digits)", hint="see 'platform-kit release list'"
        )
    reference = f"{release.image}:{tag}"
    if not registry.has(tag):
        raise ImageNotFoundError(
            f"{reference} is not in the registry, so production cannot be rolled back to it",
            hint="see 'platform-kit release list' for the releases that were pushed",
        )
    docker = engine()
    if not docker.has_image(reference):
        docker.pull(release.image, tag)
    record = releases.find(tag)
    manifest = record.manifest if record else _manifest_label(docker, reference)
    previous = registry.digest(PRODUCTION_TAG)
    docker.tag(reference, release.image, PRODUCTION_TAG)
    docker.push(release.image, PRODUCTION_TAG)
    releases.record_rollback(
        tag,
        release.image,
        manifest,
        git_sha=gitinfo.git_sha(config.root) or "unknown",
        previous_digest=previous,
    )
    return RollbackResult(tag, release.image, manifest, previous)


def _check_labels(engine: Engine, reference: str, buildargs: dict[str, str]) -> None:
    """A Dockerfile that lost its LABEL step must not produce a release nobody can trace."""
    labels = engine.labels(reference)
    expected = {
        LABEL_REVISION: buildargs["REVISION"],
        LABEL_MD5: buildargs["MANIFEST_MD5"],
        LABEL_MANIFEST: buildargs["MANIFEST"],
        LABEL_DOLT_COMMIT: buildargs["DOLT_COMMIT"],
    }
    wrong = sorted(k for k, v in expected.items() if labels.get(k) != v)
    if wrong:
        raise ReleaseError(
            f"{reference} was built without the labels {', '.join(wrong)}",
            hint="images/serving/Dockerfile must end with its LABEL step",
        )


def _manifest_label(engine: Engine, reference: str) -> dict[str, str]:
    text = engine.labels(reference).get(LABEL_MANIFEST)
    if not text:
        raise ReleaseError(f"{reference} carries no {LABEL_MANIFEST} label: not a release image")
    return {str(k): str(v) for k, v in json.loads(text).items()}


def _record(log: ReleaseLog, tag: str) -> ReleaseRecord:
    record = log.find(tag)
    if record is None:
        raise ImageNotFoundError(
            f"no release {tag!r} is recorded", hint="see 'platform-kit release list'"
        )
    return record


def _dolt_commit(versions: Sequence[VersionInfo]) -> str:
    """The data commit of the newest model version (the release's data is at least that new)."""
    newest = max(versions, key=lambda v: v.created_ms)
    return newest.tags.get(DOLT_COMMIT, "")


@contextmanager
def _timed(what: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    logger.info("%s: %.1f s", what, time.perf_counter() - start)


@contextmanager
def _lock(config: Config) -> Iterator[None]:
    """One release build per project at a time: the second waits, then finds the tag pushed."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with open(config.state_dir / "release.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = [
    "ReleaseResult",
    "RollbackResult",
    "build_release",
    "diff_releases",
    "ensure_base_image",
    "list_releases",
    "resolve_manifest",
    "rollback_release",
]
