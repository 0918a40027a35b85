"""What a release is made of on the host: the runtime's docker build context (the serving code and
numpy) and every model.

The runtime is a small image built by the engine (images/serving/Dockerfile: no models, no
per-release labels) and named by a hash of its inputs (:func:`runtime_key`), so it is built and
pushed once; the models are laid over it as layers made on the host (:mod:`.layers`).

Models are fetched from MLflow (each version's ``source`` holds the :mod:`platform_kit.servable`
format: ``model.json`` and ``weights.npz``) in parallel, since a release of hundreds of adapters is hundreds of downloads,
and kept in a host cache keyed by the version's source: a version's artifacts never change, so
the next release fetches only the versions that are new. Each model's digest (the
``platform-kit.models`` label) is cached beside it, since an entry never changes.
numpy comes from a wheel downloaded once on the host for the image's Python (3.11) and unpacked
there (a wheel is a zip), because nothing is installed from the network inside a build and the
image should carry no installer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from platform_kit import env
from platform_kit.errors import ReleaseError
from platform_kit.tracking.client import call
from platform_kit.tracking.registry import VersionInfo

# The recipes ship as package data (images/ in the repo links to them), so releases also build
# from a plain 'pip install'.
ASSETS = Path(__file__).resolve().parents[1] / "assets"
SERVING = ASSETS / "serving"
# The format's one reader, copied into the image; named by path, since importing it loads numpy.
SERVABLE = Path(__file__).resolve().parents[1] / "servable.py"
MODEL_CACHE_DAYS = 30  # entries unused for this long are pruned
IMAGE_PYTHON = "3.11"  # bookworm's python3, and python:3.11-slim's
DOWNLOAD_WORKERS = 8


RUNTIME_FILES = ("Dockerfile", "server.py")


def runtime_key(base_id: str) -> str:
    """A hash of everything the runtime image is built from: the base image's id, the
    Dockerfile, the server, the model format's reader and numpy's wheel."""
    digest = hashlib.sha256(f"base {base_id}\n".encode())
    for path in [*(SERVING / n for n in RUNTIME_FILES), SERVABLE]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(b"numpy " + numpy_wheel().name.encode())
    return digest.hexdigest()[:24]


def assemble_runtime(root: Path) -> Path:
    """Fill ``root`` with everything images/serving/Dockerfile copies; return ``root``.

    Raises:
        ReleaseError: numpy cannot be fetched.
    """
    for name in RUNTIME_FILES:
        shutil.copy(SERVING / name, root / name)
    # The format's one reader, shared with the trainers; server.py imports it as 'bow'.
    shutil.copy(SERVABLE, root / "bow.py")
    shutil.copytree(site_packages(), root / "site-packages", copy_function=_link_or_copy)
    return root


def fetch_models(
    versions: Sequence[VersionInfo], uri: str, *, model_cache: Path | None = None
) -> list[Path]:
    """Each version's servable model in the host cache (downloaded where missing), in order.

    Raises:
        ReleaseError: a model version holds no servable model.
        TrackingError, ServiceError: MLflow refused or is down.
    """
    model_cache = model_cache or models_cache()
    model_cache.mkdir(parents=True, exist_ok=True)
    _prune(model_cache)
    with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
        return list(pool.map(lambda v: cached_model(v, uri, model_cache), versions))


def release_file(manifest: Mapping[str, str], tag: str) -> bytes:
    """/models/manifest.json: what the server reads first."""
    return (json.dumps({"manifest": dict(manifest), "md5": tag}, sort_keys=True) + "\n").encode()


def model_digest(directory: Path) -> str:
    """``sha256:`` of a model's files: their relative paths and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def cached_digest(directory: Path) -> str:
    """:func:`model_digest` of a cached model, computed once and kept beside it."""
    saved = directory.with_name(directory.name + ".digest")
    try:
        found = saved.read_text().strip()
        if found.startswith("sha256:"):
            os.utime(saved)  # recently used: keep it
            return found
    except OSError:
        pass
    found = model_digest(directory)
    fd, partial = tempfile.mkstemp(prefix=".digest-", dir=directory.parent)
    with os.fdopen(fd, "w") as out:
        out.write(found)
    os.replace(partial, saved)
    return found


def models_cache() -> Path:
    """Where downloaded model versions are kept between releases (under the kit's cache)."""
    return env.cache_dir() / "models"


def layers_cache() -> Path:
    """Where built model layers are kept between releases (under the kit's cache)."""
    return env.cache_dir() / "layers"


def wheels_cache() -> Path:
    """Where numpy's wheel for the image's Python is kept (under the kit's cache)."""
    return env.cache_dir() / "wheels"


def cached_model(info: VersionInfo, uri: str, cache: Path | None = None) -> Path:
    """The directory holding ``info``'s servable model, downloaded once per host.

    Raises:
        ReleaseError: the version's artifacts hold no ``model.json``.
    """
    import mlflow.artifacts

    cache = cache or models_cache()
    target = cache / model_key(info, uri)
    if (target / "model.json").is_file():
        os.utime(target)  # recently used: keep it
        return target
    partial = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        downloaded = Path(
            call(
                lambda: mlflow.artifacts.download_artifacts(
                    artifact_uri=info.source, dst_path=str(partial), tracking_uri=uri
                ),
                f"download version {info.version} of model {info.name!r}",
            )
        )
        if not (downloaded / "model.json").is_file():
            raise ReleaseError(
                f"{info.name} v{info.version} has no servable model "
                f"(no model.json at {info.source})",
                hint="its trainer must export platform_kit.servable's format (training.bow) "
                "under the artifact path 'model'",
            )
        try:
            downloaded.rename(target)  # atomic: a concurrent build sees all of it or none
        except OSError:
            if not (target / "model.json").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def model_key(info: VersionInfo, uri: str) -> str:
    """A version's entry in the model cache: its artifacts never change."""
    return hashlib.sha256(f"{uri}|{info.source}".encode()).hexdigest()[:32]


def _prune(cache: Path) -> None:
    horizon = time.time() - MODEL_CACHE_DAYS * 86400
    for entry in cache.iterdir():
        try:
            if entry.stat().st_mtime < horizon:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
        except FileNotFoundError:
            continue  # another build pruned or renamed it


def numpy_wheel(cache: Path | None = None) -> Path:
    """numpy's wheel for the image's Python (downloaded once)."""
    cache = cache or wheels_cache()
    wheels = sorted(wheelhouse(cache).glob("numpy-*.whl"))
    if len(wheels) != 1:
        raise ReleaseError(f"expected one numpy wheel in {cache}, found {len(wheels)}")
    return wheels[0]


def site_packages(cache: Path | None = None) -> Path:
    """numpy unpacked from its wheel for the image's Python, cached beside the wheel."""
    cache = cache or wheels_cache()
    wheel = numpy_wheel(cache)
    target = cache / (wheel.name.removesuffix(".whl") + ".unpacked")
    if not target.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=cache))
        with zipfile.ZipFile(wheel) as wheel_zip:
            wheel_zip.extractall(partial)
        try:
            partial.rename(target)  # atomic: a concurrent build sees all of it or none
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)  # another build unpacked it first
    return target


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # the context is only read, so a hard link will do
    except OSError:
        shutil.copy2(source, target)


def wheelhouse(cache: Path | None = None) -> Path:
    """numpy wheels for the image's Python, downloaded once on the host and cached.

    The host's numpy version is used, so the image serves with the numpy the trainer saved with.
    """
    import numpy

    cache = cache or wheels_cache()

    wanted = f"numpy-{numpy.__version__}-"
    if not any(w.name.startswith(wanted) for w in cache.glob("numpy-*.whl")):
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
        command += [
            "--only-binary=:all:",
            "--python-version",
            IMAGE_PYTHON,
            "--implementation",
            "cp",
        ]
        for platform in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"):
            command += ["--platform", platform]
        command += ["-d", str(cache), f"numpy=={numpy.__version__}"]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ReleaseError(
                f"downloading numpy {numpy.__version__} for the image failed: "
                f"{result.stderr.strip()[-300:]}",
                hint="check access to PyPI, or put the wheel in " + str(cache),
            )
    for stale in cache.glob("numpy-*"):
        if not stale.name.startswith(wanted):
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
    return cache
