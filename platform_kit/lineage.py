"""Lineage: from a release to its model versions, runs, code commit, data commit and sheet syncs.

Every link is read from what the kit recorded, never guessed: the release record (an MLflow run
in ``platform-kit-releases`` named by its tag, with ``manifest.json``), the model versions' tags
(``git.sha``, ``dolt.commit``, ``data.fingerprint``), and the Dolt log, whose sync commits
(``sync <sheet>: ... (source <id>@<revision>)``) name the sheet revisions behind the data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from platform_kit.errors import UsageError
from platform_kit.store.base import Store
from platform_kit.tracking.registry import ModelRegistry
from platform_kit.tracking.releases import ReleaseLog, ReleaseRecord
from platform_kit.tracking.tags import DOLT_BRANCH, DOLT_COMMIT, ENV_PREFIX, FINGERPRINT, GIT_SHA

_SYNC_MESSAGE = re.compile(
    r"^sync (?P<sheet>\S+): \+(?P<added>\d+) ~(?P<changed>\d+) -(?P<deleted>\d+) rows "
    r"\(source (?P<source>.+)@(?P<revision>[^@)]*)\)"
)
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class SheetSync:
    """A sync commit behind a model's data: the sheet's revision that produced it."""

    sheet: str
    commit: str
    source: str
    revision: str
    message: str


@dataclass
class VersionLineage:
    name: str
    version: int
    run_id: str | None
    git_sha: str
    dolt_commit: str
    dolt_branch: str
    fingerprint: str
    metrics: dict[str, float] = field(default_factory=dict)
    syncs: list[SheetSync] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # the env.* tags


@dataclass
class Lineage:
    release_tag: str | None
    release_image: str | None
    release_git_sha: str | None
    versions: list[VersionLineage]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lineage(ref: str, *, registry: ModelRegistry, releases: ReleaseLog, store: Store) -> Lineage:
    """The lineage of an image tag (or ``image:tag``), ``NAME@VERSION``, or an MLflow run id.

    Raises:
        UsageError: REF matches no release, model version or run.
    """
    record = releases.find(ref.rsplit(":", 1)[-1]) if "@" not in ref else None  # image:tag or tag
    if record is not None:
        versions = [
            _version(registry, store, n, int(v)) for n, v in sorted(record.manifest.items())
        ]
        return Lineage(record.tag, record.image, record.git_sha, versions)
    if "@" in ref:
        name, _, version = ref.rpartition("@")
        if not version.isdigit():
            raise UsageError(f"{ref!r}: expected NAME@VERSION with a version number")
        return Lineage(None, None, None, [_version(registry, store, name, int(version))])
    if _HEX32.match(ref):
        for infos in registry.versions().values():
            for info in infos:
                if info.run_id == ref:
                    return Lineage(
                        None, None, None, [_version(registry, store, info.name, info.version)]
                    )
    raise UsageError(
        f"{ref!r} is not a release tag, NAME@VERSION or the run id of a model version",
        hint="see 'platform-kit release list' and 'platform-kit model list'",
    )


def of_manifest(
    tag: str | None,
    image: str | None,
    manifest: Mapping[str, str],
    *,
    registry: ModelRegistry,
    store: Store,
    git_sha: str | None = None,
) -> Lineage:
    """The lineage of an image's manifest, recorded as a release or not (yet)."""
    versions = [_version(registry, store, n, int(v)) for n, v in sorted(manifest.items())]
    return Lineage(tag, image, git_sha, versions)


def releases_using(
    commit: str, *, registry: ModelRegistry, releases: ReleaseLog
) -> list[ReleaseRecord]:
    """Releases that include a model version trained on Dolt commit ``commit`` (or its prefix)."""
    trained: set[tuple[str, str]] = set()
    for name, versions in registry.versions().items():
        for info in versions:
            if info.tags.get(DOLT_COMMIT, "").startswith(commit):
                trained.add((name, str(info.version)))
    return [r for r in releases.all() if any(item in trained for item in r.manifest.items())]


def _version(registry: ModelRegistry, store: Store, name: str, version: int) -> VersionLineage:
    info = registry.version(name, version)
    commit = info.tags.get(DOLT_COMMIT, "")
    return VersionLineage(
        name=name,
        version=version,
        run_id=info.run_id,
        git_sha=info.tags.get(GIT_SHA, ""),
        dolt_commit=commit,
        dolt_branch=info.tags.get(DOLT_BRANCH, ""),
        fingerprint=info.tags.get(FINGERPRINT, ""),
        metrics=info.metrics,
        syncs=sheet_syncs(store, commit) if commit else [],
        environment={k: v for k, v in sorted(info.tags.items()) if k.startswith(ENV_PREFIX)},
    )


def sheet_syncs(store: Store, commit: str, limit: int = 500) -> list[SheetSync]:
    """The latest sync commit of each sheet in the history of ``commit``."""
    latest: dict[str, SheetSync] = {}
    for entry in store.log(commit, limit=limit):
        match = _SYNC_MESSAGE.match(entry.message)
        if match and match["sheet"] not in latest:
            latest[match["sheet"]] = SheetSync(
                sheet=match["sheet"],
                commit=entry.hash,
                source=match["source"],
                revision=match["revision"],
                message=entry.message,
            )
    return [latest[s] for s in sorted(latest)]


def mermaid(result: Lineage) -> str:
    """The lineage as a Mermaid flowchart: sheet revisions -> Dolt commits -> model versions
    -> image (GitHub renders a ``mermaid`` code block in Markdown as this diagram)."""
    lines = ["flowchart LR"]
    idents: dict[str, str] = {}  # what a node stands for -> its id
    nodes: list[str] = []  # declarations, each node declared once
    edges: list[str] = []

    def node(key: str, label: str, shape: str = "box") -> str:
        if key not in idents:
            ident = idents[key] = f"n{len(idents)}"
            text = _mermaid_text(label)
            nodes.append(f'{ident}(["{text}"])' if shape == "round" else f'{ident}["{text}"]')
        return idents[key]

    def edge(a: str, b: str) -> None:
        line = f"  {a} --> {b}"
        if line not in edges:
            edges.append(line)

    image = None
    if result.release_tag:
        image = node(
            f"image:{result.release_tag}",
            f"image {result.release_image}:{result.release_tag[:12]}",
            "round",
        )
    for v in result.versions:
        model = node(f"model:{v.name}@{v.version}", f"{v.name} v{v.version}")
        if image:
            edge(model, image)
        if v.dolt_commit:
            synced = [s.sheet for s in v.syncs if s.commit == v.dolt_commit]
            trained = node(
                f"dolt:{v.dolt_commit}",
                f"Dolt {v.dolt_commit[:12]} on {v.dolt_branch or '?'}"
                + (f" (sync {', '.join(synced)})" if synced else ""),
            )
            edge(trained, model)
            for sync in v.syncs:
                commit = node(f"dolt:{sync.commit}", f"Dolt {sync.commit[:12]} sync {sync.sheet}")
                sheet = node(
                    f"sheet:{sync.sheet}@{sync.revision}",
                    f"sheet {sync.sheet} @ {sync.revision or '?'}",
                    "round",
                )
                edge(sheet, commit)
                if commit != trained:
                    edge(commit, trained)
    lines += [f"  {declaration}" for declaration in nodes]
    lines += edges
    return "\n".join(lines) + "\n"


def _mermaid_text(label: str) -> str:
    """A label safe inside Mermaid's double quotes (entity codes, as Mermaid documents)."""
    return (
        label.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )
