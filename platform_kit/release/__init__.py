"""Releases: one image bundling every production model, tagged with the MD5 of its manifest.

Build order is the failure semantics: resolve the manifest (refusing models with no production
version), skip everything when the tag is already in the registry, build, push (scanning the
stream for errors), and only then record the release in MLflow. A failed build or push leaves
no record, and a rerun simply tries again.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform_kit import gitinfo
from platform_kit.config import Config, ReleaseConfig
from platform_kit.errors import ImageNotFoundError, PlatformKitError, ReleaseError, UsageError
from platform_kit.release.images import Engine, Registry
from platform_kit.release.manifest import changed_models, manifest_md5
from platform_kit.services import mlflow_uri
from platform_kit.tracking.client import mlflow_client
from platform_kit.tracking.models import DOLT_COMMIT, VersionInfo, registry_for
from platform_kit.tracking.releases import ReleaseLog, ReleaseRecord
from training import bow

# The recipes ship as package data (images/ in the repo links to them), so releases also build
# from a plain 'pip install'.
ASSETS = Path(__file__).resolve().parents[1] / "assets"
SERVING = ASSETS / "serving"
BASE_SCRIPT = ASSETS / "base" / "build.sh"
LOCAL_BASE = "platform-kit/base:bookworm"
PRODUCTION_TAG = "production"


@dataclass(frozen=True)
class ReleaseResult:
    tag: str
    image: str
    manifest: dict[str, str]
    built: bool  # False: the tag was already in the registry
    pushed: bool

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
        }


def docker_available() -> str | None:
    """None when a Docker engine answers; otherwise why not, in one line."""
    try:
        Engine()
    except PlatformKitError as exc:
        return str(exc)
    return None


def resolve_manifest(
    config: Config, alias: str | None = None
) -> tuple[dict[str, str], list[VersionInfo]]:
    """``{model: version}`` of the configured models holding the alias.

    Raises:
        ReleaseError: a configured model has no version with the alias (named).
    """
    from platform_kit.models import expand_models
    from platform_kit.store import open_store

    store = open_store(config)
    names = [m.name for m in expand_models(config, store, store.resolve(config.dolt.main_branch))]
    registry = registry_for(config)
    if alias:
        registry.alias = alias
    versions, missing = [], []
    for name in names:
        info = registry.production(name)
        if info is None:
            missing.append(name)
        else:
            versions.append(info)
    if missing:
        raise ReleaseError(
            f"no {registry.alias!r} version for: {', '.join(missing)}",
            hint="train them ('platform-kit train') or promote a version ('platform-kit model promote')",
        )
    if not versions:
        raise ReleaseError("no models are configured, so there is nothing to release")
    return {v.name: str(v.version) for v in versions}, versions


def build_release(config: Config, *, push: bool = True, alias: str | None = None) -> ReleaseResult:
    """Build (and push, and record) the release of the production models; idempotent."""
    release = _release_config(config)
    manifest, versions = resolve_manifest(config, alias)
    tag = manifest_md5(manifest)
    registry = Registry(release.image)
    with _lock(config):
        if registry.digest(tag) is not None:
            log = ReleaseLog(mlflow_client(mlflow_uri(config)))
            if log.find(tag) is None:  # pushed by a run that died before recording it
                log.record(
                    tag,
                    release.image,
                    manifest,
                    (gitinfo.git_sha(config.root) or "unknown"),
                    _dolt_commit(versions),
                )
            return ReleaseResult(tag, release.image, manifest, built=False, pushed=True)
        engine = Engine()
        base = ensure_base_image(engine, release.base_image)
        with tempfile.TemporaryDirectory(prefix="platform-kit-release-") as tmp:
            context = _context(config, Path(tmp), manifest, tag, versions)
            labels = {
                "org.opencontainers.image.revision": (gitinfo.git_sha(config.root) or "unknown"),
                "platform-kit.manifest.md5": tag,
                "platform-kit.manifest": json.dumps(
                    manifest, sort_keys=True, separators=(",", ":")
                ),
                "platform-kit.dolt.commit": _dolt_commit(versions),
            }
            engine.build(context, f"{release.image}:{tag}", {"BASE_IMAGE": base}, labels)
        if not push:
            return ReleaseResult(tag, release.image, manifest, built=True, pushed=False)
        engine.push(release.image, tag)
        ReleaseLog(mlflow_client(mlflow_uri(config))).record(
            tag,
            release.image,
            manifest,
            labels["org.opencontainers.image.revision"],
            labels["platform-kit.dolt.commit"],
        )
        return ReleaseResult(tag, release.image, manifest, built=True, pushed=True)


def ensure_base_image(engine: Engine, base_image: str) -> str:
    """The configured base if the engine has it; else the locally built one (nothing is pulled)."""
    if engine.has_image(base_image):
        return base_image
    if not BASE_SCRIPT.exists():
        raise ReleaseError(
            f"base image {base_image!r} is missing and cannot be built here",
            hint=f"docker pull {base_image}",
        )
    result = subprocess.run(
        ["bash", str(BASE_SCRIPT), LOCAL_BASE, base_image], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ReleaseError(f"building the base image failed: {result.stderr.strip()[-300:]}")
    return base_image


def list_releases(config: Config) -> list[dict[str, Any]]:
    """Releases newest first, with the models changed against the previous one."""
    records = ReleaseLog(mlflow_client(mlflow_uri(config))).all()
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


def diff_releases(config: Config, tag1: str, tag2: str) -> dict[str, tuple[str | None, str | None]]:
    log = ReleaseLog(mlflow_client(mlflow_uri(config)))
    first, second = (_record(log, t) for t in (tag1, tag2))
    return changed_models(first.manifest, second.manifest)


def rollback_release(config: Config, tag: str) -> ReleaseRecord:
    """Point ``<image>:production`` at an earlier release's image and record the rollback."""
    release = _release_config(config)
    log = ReleaseLog(mlflow_client(mlflow_uri(config)))
    if Registry(release.image).digest(tag) is None:
        raise ImageNotFoundError(
            f"{release.image}:{tag} is not in the registry",
            hint="see 'platform-kit release list' for releases",
        )
    record = _record(log, tag)
    engine = Engine()
    if not engine.has_image(f"{release.image}:{tag}"):
        engine.pull(release.image, tag)
    engine.tag(f"{release.image}:{tag}", release.image, PRODUCTION_TAG)
    engine.push(release.image, PRODUCTION_TAG)
    log.record_rollback(
        tag, release.image, record.manifest, (gitinfo.git_sha(config.root) or "unknown")
    )
    return record


def _record(log: ReleaseLog, tag: str) -> ReleaseRecord:
    record = log.find(tag)
    if record is None:
        raise UsageError(f"no release {tag!r} is recorded", hint="see 'platform-kit release list'")
    return record


def _release_config(config: Config) -> ReleaseConfig:
    if config.release is None:
        raise UsageError(f"{config.path}: no 'release' section", hint="add release: {image: ...}")
    return config.release


def _dolt_commit(versions: list[VersionInfo]) -> str:
    """The data commit of the newest model version (the release's data is at least that new)."""
    newest = max(versions, key=lambda v: v.created_ms)
    return newest.tags.get(DOLT_COMMIT, "")


def _context(
    config: Config, root: Path, manifest: dict[str, str], tag: str, versions: list[VersionInfo]
) -> Path:
    import mlflow.artifacts

    shutil.copy(SERVING / "Dockerfile", root / "Dockerfile")
    shutil.copy(SERVING / "server.py", root / "server.py")
    shutil.copy(bow.__file__, root / "bow.py")
    wheels = root / "wheels"
    wheels.mkdir()
    for wheel in _wheelhouse().glob("*.whl"):
        shutil.copy(wheel, wheels / wheel.name)
    models = root / "models"
    models.mkdir()
    uri = mlflow_uri(config)
    for info in sorted(versions, key=lambda v: v.name):
        target = models / info.name
        downloaded = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=info.source,
                dst_path=str(root / "download" / info.name),
                tracking_uri=uri,
            )
        )
        if not (downloaded / "model.json").exists():
            raise ReleaseError(
                f"{info.name} v{info.version} has no servable model (model.json)",
                hint="its trainer must export training.bow's format under 'model'",
            )
        shutil.copytree(downloaded, target)
    shutil.rmtree(root / "download", ignore_errors=True)
    (models / "manifest.json").write_text(
        json.dumps({"manifest": manifest, "md5": tag}, sort_keys=True)
    )
    return root


def _wheelhouse() -> Path:
    """numpy wheels for the image's Python 3.11, downloaded once on the host and cached."""
    import numpy

    cache = Path.home() / ".cache" / "platform-kit" / "wheels"
    if not list(cache.glob(f"numpy-{numpy.__version__}-*.whl")):
        cache.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--platform",
                "manylinux_2_28_x86_64",
                "--platform",
                "manylinux_2_17_x86_64",
                "--platform",
                "manylinux2014_x86_64",
                "-d",
                str(cache),
                f"numpy=={numpy.__version__}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ReleaseError(
                f"downloading numpy for the image failed: {result.stderr.strip()[-300:]}"
            )
    for stale in cache.glob("numpy-*.whl"):
        if not stale.name.startswith(f"numpy-{numpy.__version__}-"):
            stale.unlink()
    return cache


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
    "build_release",
    "diff_releases",
    "docker_available",
    "list_releases",
    "resolve_manifest",
    "rollback_release",
]
