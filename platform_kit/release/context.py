"""The docker build context of a release: the serving code, numpy's wheels, and every model.

Models are fetched from MLflow (each version's ``source`` holds training.bow's ``model.json`` and
``weights.npz``) in parallel, since a release of hundreds of adapters is hundreds of downloads.
numpy comes from a wheel downloaded once on the host for the image's Python (3.11) and unpacked
there (a wheel is a zip), because nothing is installed from the network inside a build and the
image should carry no installer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from platform_kit.errors import ReleaseError
from platform_kit.tracking.client import call
from platform_kit.tracking.models import VersionInfo
from training import bow

# The recipes ship as package data (images/ in the repo links to them), so releases also build
# from a plain 'pip install'.
ASSETS = Path(__file__).resolve().parents[1] / "assets"
SERVING = ASSETS / "serving"
WHEELHOUSE = Path.home() / ".cache" / "platform-kit" / "wheels"
IMAGE_PYTHON = "3.11"  # bookworm's python3, and python:3.11-slim's
DOWNLOAD_WORKERS = 8


def assemble_context(
    root: Path, manifest: Mapping[str, str], tag: str, versions: Sequence[VersionInfo], uri: str
) -> Path:
    """Fill ``root`` with everything images/serving/Dockerfile copies; return ``root``.

    Raises:
        ReleaseError: a model version holds no servable model, or numpy cannot be fetched.
        TrackingError, ServiceError: MLflow refused or is down.
    """
    for name in ("Dockerfile", "server.py"):
        shutil.copy(SERVING / name, root / name)
    shutil.copy(bow.__file__, root / "bow.py")  # the format's one reader, shared with training
    shutil.copytree(site_packages(), root / "site-packages", copy_function=_link_or_copy)
    models = root / "models"
    models.mkdir()
    with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
        list(pool.map(lambda v: _fetch_model(v, models, root / "download", uri), versions))
    shutil.rmtree(root / "download", ignore_errors=True)
    release = {"manifest": dict(manifest), "md5": tag}
    (models / "manifest.json").write_text(json.dumps(release, sort_keys=True) + "\n")
    return root


def _fetch_model(info: VersionInfo, models: Path, downloads: Path, uri: str) -> None:
    import mlflow.artifacts

    downloaded = Path(
        call(
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=info.source, dst_path=str(downloads / info.name), tracking_uri=uri
            ),
            f"download version {info.version} of model {info.name!r}",
        )
    )
    if not (downloaded / "model.json").is_file():
        raise ReleaseError(
            f"{info.name} v{info.version} has no servable model (no model.json at {info.source})",
            hint="its trainer must export training.bow's format under the artifact path 'model'",
        )
    shutil.copytree(downloaded, models / info.name)


def site_packages(cache: Path = WHEELHOUSE) -> Path:
    """numpy unpacked from its wheel for the image's Python, cached beside the wheel."""
    wheels = sorted(wheelhouse(cache).glob("numpy-*.whl"))
    if len(wheels) != 1:
        raise ReleaseError(f"expected one numpy wheel in {cache}, found {len(wheels)}")
    target = cache / (wheels[0].name.removesuffix(".whl") + ".unpacked")
    if not target.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=cache))
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extractall(partial)
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


def wheelhouse(cache: Path = WHEELHOUSE) -> Path:
    """numpy wheels for the image's Python, downloaded once on the host and cached.

    The host's numpy version is used, so the image serves with the numpy the trainer saved with.
    """
    import numpy

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
