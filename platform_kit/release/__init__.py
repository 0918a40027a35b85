"""Releases: one image bundling every production model, tagged with the MD5 of its manifest.

Build order is the failure semantics:

1. resolve the manifest ``{model: version}`` from the alias at one Dolt commit (``ref``; the
   plan's commit in the pipeline). A configured model with no version holding the alias is left
   out with a warning (it was never promoted; a model whose training failed keeps its previous
   version), or refused by name with ``release.require_all``;
2. under the Store's ``release`` lock (Dolt ``GET_LOCK``: it holds across processes and runners),
   when ``<image>:<md5>`` is already in the registry, compare the image's labels (each model's
   run id) and refuse when the content differs; else there is nothing to build;
3. build the serving image, ask the registry once more, push, scanning the stream for errors;
4. only then record the release in MLflow. A failed build or push leaves no record, and a rerun
   simply tries again.

Deploying moves the registry tag ``<image>:production`` (a manifest put inside the registry: no
pull, no push of layers) under the same lock, and records the move in MLflow. A rollback is a
deploy to an earlier tag.

Every backend is an argument (the CLI's :class:`platform_kit.project.Project` builds them).
The manifest is resolved from the models platform.yaml declares (families expanded by
:func:`platform_kit.catalog.expand_models` at the commit), not from every registered model
holding the alias, so a model dropped from the config leaves the next release.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_kit import env, gitinfo, jsonio
from platform_kit.config import Config
from platform_kit.errors import ImageNotFoundError, ReleaseError, UsageError
from platform_kit.release.context import ASSETS, assemble_context, cached_model
from platform_kit.release.images import Engine
from platform_kit.release.manifest import canonical_json, changed_models, manifest_md5
from platform_kit.release.registry import Registry
from platform_kit.store.base import Store
from platform_kit.tracking.registry import ModelRegistry, RegistrySnapshot, VersionInfo
from platform_kit.tracking.releases import DeployRecord, ReleaseLog, ReleaseRecord
from platform_kit.tracking.tags import DOLT_COMMIT

BASE_SCRIPT = ASSETS / "base" / "build.sh"
LOCAL_BASE = "platform-kit/base:bookworm"
PRODUCTION_TAG = "production"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_MD5 = "platform-kit.manifest.md5"
LABEL_MANIFEST = "platform-kit.manifest"
LABEL_DOLT_COMMIT = "platform-kit.dolt.commit"
LABEL_MODELS = "platform-kit.models"  # {model: {"run_id": ..., "digest": "sha256:..."}}
RELEASE_LOCK = "release"  # the Store lock around building, pushing and deploying
LOCK_TIMEOUT = 3600.0  # a large release builds for a long time on a slow engine
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
    left_out: tuple[str, ...] = ()  # configured models with no version holding the alias
    dolt_commit: str = ""  # the commit the models were resolved at

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
            "left_out": list(self.left_out),
            "ref": self.dolt_commit,
        }


@dataclass(frozen=True)
class DeployResult:
    tag: str
    image: str
    manifest: dict[str, str]
    previous_digest: str | None  # what production pointed at before, if anything
    previous_tag: str | None = None  # the release tag it pointed at before, if known
    moved: bool = True  # False: production already pointed at the tag; nothing was recorded
    rollback: bool = False

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
            "previous_tag": self.previous_tag,
            "moved": self.moved,
            "kind": "rollback" if self.rollback else "deploy",
            "manifest": self.manifest,
        }


RollbackResult = DeployResult  # a rollback is a deploy to an earlier tag


@dataclass(frozen=True)
class Resolution:
    """What a release holds: the manifest, its versions, and the models left out of it."""

    manifest: dict[str, str]
    versions: list[VersionInfo]
    commit: str
    left_out: list[str] = field(default_factory=list)


def resolve_manifest(
    config: Config,
    store: Store,
    models: ModelRegistry,
    *,
    ref: str | None = None,
    require_all: bool | None = None,
    snapshot: RegistrySnapshot | None = None,
) -> Resolution:
    """The configured models holding ``models.alias``, expanded at one Dolt commit.

    Args:
        store: where the model families are expanded.
        models: the registry, seen through the alias to release.
        ref: the Dolt branch, tag or commit to expand the families at (default: the head of the
            main branch); the pipeline passes the commit its plan trained.
        require_all: refuse when a model has no version holding the alias (default:
            ``release.require_all``); else such models are left out, with a warning.
        snapshot: the registry's versions and aliases as the caller just read them (a run that
            trained nothing); default: read them here.

    Raises:
        ReleaseError: no model is configured, none holds the alias, or (``require_all``) some
            model does not (all such are named).
    """
    from platform_kit.catalog import expand_models

    if require_all is None:
        require_all = bool(config.release and config.release.require_all)
    commit = store.resolve(ref or config.dolt.main_branch)
    names = [m.name for m in expand_models(config, store, commit)]
    if not names:
        raise ReleaseError(
            f"{config.path}: no models are configured, so there is nothing to release"
        )
    holding = models.productions(names, snapshot)  # two searches, not a call per model
    found = [holding[name] for name in names]
    missing = [name for name, info in zip(names, found, strict=True) if info is None]
    if missing and (require_all or len(missing) == len(names)):
        raise ReleaseError(
            f"no {models.alias!r} version for: {_some(missing)}",
            hint="train them ('platform-kit train') or promote a version ('platform-kit model "
            "promote')"
            + ("; release.require_all refuses a release without them" if require_all else ""),
        )
    if missing:
        logger.warning(
            "left out of the release (never had a %r version): %s", models.alias, _some(missing)
        )
    versions = [info for info in found if info is not None]
    return Resolution({v.name: str(v.version) for v in versions}, versions, commit, missing)


def _some(names: Sequence[str], shown: int = 20) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


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
    ref: str | None = None,
    snapshot: RegistrySnapshot | None = None,
) -> ReleaseResult:
    """Build, push and record the release of the models holding ``models.alias``; idempotent.

    Args:
        store, models: where the manifest is resolved (see :func:`resolve_manifest`); the store
            also holds the release lock.
        releases: where the release is recorded.
        registry: the registry behind ``release.image``.
        engine: returns the Docker engine; called only when an image must be built, so a
            release already in the registry needs none.
        tracking_uri: the MLflow server the models' artifacts are downloaded from.
        push: push the image and record the release; False only builds it locally.
        no_cache: build every layer again (the benchmark's cold build).
        ref: the Dolt commit (or branch, tag) the models are resolved at; default main's head.
        snapshot: the registry as the caller just read it (see :func:`resolve_manifest`).

    Raises:
        ReleaseError: no model has a version with the alias (or ``release.require_all`` and one
            has none), the tag is pushed with other content, or building or pushing failed
            (nothing is recorded then).
        ServiceError: Docker, the registry or MLflow is down.
    """
    release = config.require_release()
    with _timed("resolve the manifest"):
        resolved = resolve_manifest(config, store, models, ref=ref, snapshot=snapshot)
    manifest, versions = resolved.manifest, resolved.versions
    tag = manifest_md5(manifest)
    reference = f"{release.image}:{tag}"
    git_sha = gitinfo.git_sha(config.root) or "unknown"
    dolt_commit = _dolt_commit(versions)

    def result(built: bool, pushed: bool, recorded: bool = False) -> ReleaseResult:
        return ReleaseResult(
            tag,
            release.image,
            manifest,
            built=built,
            pushed=pushed,
            recorded=recorded,
            left_out=tuple(resolved.left_out),
            dolt_commit=resolved.commit,
        )

    def record() -> None:
        releases.record(
            tag,
            release.image,
            manifest,
            git_sha=git_sha,
            dolt_commit=dolt_commit,
            alias=models.alias,
        )

    with store.lock(RELEASE_LOCK, timeout=LOCK_TIMEOUT):
        if registry.has(tag):
            _check_identity(registry, reference, tag, versions)
            # Only a build that died between its push and its record leaves no record: repair.
            repair = push and not releases.recorded(tag)
            if repair:
                record()
            return result(built=False, pushed=True, recorded=repair)
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
            labels = {LABEL_MODELS: _models_label(versions, tracking_uri)}
            with _timed(f"build {reference}"):
                docker.build(context, reference, buildargs, labels, no_cache=no_cache)
            _check_labels(docker, reference, buildargs, labels)
        if not push:
            return result(built=True, pushed=False)
        if registry.has(tag):  # pushed meanwhile by a kit that does not take the lock: keep it
            _check_identity(registry, reference, tag, versions)
            return result(built=False, pushed=True)
        with _timed(f"push {reference}"):
            docker.push(release.image, tag)
        record()
        return result(built=True, pushed=True, recorded=True)


def model_digest(directory: Path) -> str:
    """``sha256:`` of a model's files: their relative paths and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def _models_label(versions: Sequence[VersionInfo], tracking_uri: str) -> str:
    """The content identity of a release: each model's run id and artifact digest (of the
    host's cached copy the context was assembled from, whatever its layout in the image)."""
    return jsonio.canonical_json(
        {
            v.name: {
                "run_id": v.run_id or "",
                "digest": model_digest(cached_model(v, tracking_uri)),
            }
            for v in versions
        }
    )


def _check_identity(
    registry: Registry, reference: str, tag: str, versions: Sequence[VersionInfo]
) -> None:
    """A tag names a manifest, not content: the same ``{model: version}`` on another MLflow
    server is other models. Refuse to take a pushed tag whose models came from other runs.

    An image pushed before the kit labelled its models' runs cannot be compared: it is taken,
    with a warning.
    """
    labels = registry.labels(tag) or {}
    text = labels.get(LABEL_MODELS)
    if not text:
        logger.warning(
            "%s carries no %s label (built by an older kit): its content is not compared",
            reference,
            LABEL_MODELS,
        )
        return
    pushed = json.loads(text)
    differ = [
        v.name
        for v in versions
        if not isinstance(pushed.get(v.name), dict)
        or pushed[v.name].get("run_id", "") != (v.run_id or "")
    ]
    if differ:
        raise ReleaseError(
            f"{reference} is already in the registry with other content: the models "
            f"{_some(differ)} come from other runs (another MLflow server or project?)",
            hint="give this project its own release.image; a pushed tag is never overwritten",
        )


def ensure_base_image(engine: Engine, base_image: str) -> str:
    """The base to build on: ``release.base_image``, pulled; the local Debian base offline.

    A tag is pulled on every build, so a base that moved (security updates) is followed; a base
    pinned by digest (``python:3.11-slim@sha256:...``) is pulled once. Where the pull fails (no
    network, as here), the engine's own copy serves, else images/base/ builds a Debian base
    (debootstrap + docker import; cached, idempotent), which needs root.

    Raises:
        ReleaseError: the base cannot be pulled, the engine has no copy, and the local base
            cannot be built (not root, or its build failed).
    """
    pinned = "@sha256:" in base_image
    if pinned and engine.has_image(base_image):
        return base_image
    try:
        engine.pull_reference(base_image)
        return base_image
    except ReleaseError as exc:
        failure = str(exc)
    if engine.has_image(base_image):
        logger.warning("%s; building on the engine's copy of %s", failure, base_image)
        return base_image
    if engine.has_image(LOCAL_BASE):
        logger.warning("%s; building on the local base %s", failure, LOCAL_BASE)
        return LOCAL_BASE
    if not BASE_SCRIPT.exists() or os.geteuid() != 0:
        raise ReleaseError(
            f"the base image {base_image!r} cannot be pulled ({failure})",
            hint=f"'docker login' to its registry, or 'docker pull {base_image}' once; offline, "
            f"root builds a local base ('sudo bash {BASE_SCRIPT}')",
        )
    logger.warning("%s; building the local base %s (debootstrap)", failure, LOCAL_BASE)
    built = subprocess.run(["bash", str(BASE_SCRIPT), LOCAL_BASE], capture_output=True, text=True)
    if built.returncode != 0:
        raise ReleaseError(
            f"building the local base image {LOCAL_BASE} failed: {built.stderr.strip()[-300:]}",
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


def deploy_release(
    config: Config,
    tag: str,
    *,
    store: Store,
    releases: ReleaseLog,
    registry: Registry,
    rollback: bool = False,
) -> DeployResult:
    """Point ``<image>:production`` at the release ``tag`` and record the move in MLflow.

    The move is a manifest put inside the registry (no pull, no push of layers), made under the
    Store's release lock so that two runners never interleave a build and a deploy. Deploying
    the tag production already points at changes and records nothing.

    Args:
        store: holds the release lock.
        releases: where the move is recorded (and the release's manifest is read).
        registry: the registry behind ``release.image``.
        rollback: record the move as a rollback (a deploy to an earlier tag).

    Raises:
        UsageError: ``tag`` is not an MD5 release tag.
        ImageNotFoundError: the registry has no ``<image>:<tag>``.
        ReleaseError: the registry refused the move (nothing is recorded then).
    """
    release = config.require_release()
    if not _TAG.match(tag):
        raise UsageError(
            f"{tag!r} is not a release tag (32 hex digits)", hint="see 'platform-kit release list'"
        )
    reference = f"{release.image}:{tag}"
    verb = "rolled back" if rollback else "deployed"
    with store.lock(RELEASE_LOCK, timeout=LOCK_TIMEOUT):
        labels = registry.labels(tag)
        if labels is None:
            raise ImageNotFoundError(
                f"{reference} is not in the registry, so production cannot be {verb} to it",
                hint="see 'platform-kit release list' for the releases that were pushed",
            )
        record = releases.find(tag)
        manifest = record.manifest if record else _manifest_label(labels, reference)
        previous = registry.digest(PRODUCTION_TAG)
        previous_tag = None
        if previous is not None:
            previous_tag = (registry.labels(PRODUCTION_TAG) or {}).get(LABEL_MD5)
        if previous is not None and previous == registry.digest(tag):
            return DeployResult(
                tag, release.image, manifest, previous, previous_tag, moved=False, rollback=rollback
            )
        registry.retag(tag, PRODUCTION_TAG)
        releases.record_deploy(
            tag,
            release.image,
            manifest,
            from_tag=previous_tag,
            by=deployer(),
            git_sha=gitinfo.git_sha(config.root) or "unknown",
            previous_digest=previous,
            rollback=rollback,
        )
    return DeployResult(tag, release.image, manifest, previous, previous_tag, rollback=rollback)


def rollback_release(
    config: Config,
    tag: str,
    *,
    store: Store,
    releases: ReleaseLog,
    registry: Registry,
) -> DeployResult:
    """A deploy to an earlier tag, recorded as a rollback (see :func:`deploy_release`)."""
    return deploy_release(
        config, tag, store=store, releases=releases, registry=registry, rollback=True
    )


def release_status(
    config: Config, *, releases: ReleaseLog, registry: Registry, limit: int = 50
) -> dict[str, Any]:
    """Where ``<image>:production`` points now (read from the registry), and its moves
    (recorded in MLflow), newest first."""
    image = config.require_release().image
    digest = registry.digest(PRODUCTION_TAG)
    tag = (registry.labels(PRODUCTION_TAG) or {}).get(LABEL_MD5) if digest else None
    history: list[DeployRecord] = releases.deploys(image, limit)
    return {
        "image": image,
        "production": f"{image}:{PRODUCTION_TAG}",
        "tag": tag,
        "digest": digest,
        "history": [d.to_json() for d in history],
    }


def deployer() -> str:
    """Who moves production: the GitHub user who started the run, else the OS user."""
    actor = env.get(env.GITHUB_ACTOR)
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _check_labels(
    engine: Engine, reference: str, buildargs: dict[str, str], extra: dict[str, str]
) -> None:
    """A Dockerfile that lost its LABEL step must not produce a release nobody can trace."""
    labels = engine.labels(reference)
    expected = {
        LABEL_REVISION: buildargs["REVISION"],
        LABEL_MD5: buildargs["MANIFEST_MD5"],
        LABEL_MANIFEST: buildargs["MANIFEST"],
        LABEL_DOLT_COMMIT: buildargs["DOLT_COMMIT"],
        **extra,
    }
    wrong = sorted(k for k, v in expected.items() if labels.get(k) != v)
    if wrong:
        raise ReleaseError(
            f"{reference} was built without the labels {', '.join(wrong)}",
            hint="images/serving/Dockerfile must end with its LABEL step",
        )


def _manifest_label(labels: dict[str, str], reference: str) -> dict[str, str]:
    text = labels.get(LABEL_MANIFEST)
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


__all__ = [
    "DeployResult",
    "ReleaseResult",
    "Resolution",
    "RollbackResult",
    "build_release",
    "deploy_release",
    "diff_releases",
    "ensure_base_image",
    "list_releases",
    "release_status",
    "resolve_manifest",
    "rollback_release",
]
