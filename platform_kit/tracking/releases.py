"""Release records in MLflow: experiment ``platform-kit-releases``, one run per release.

A release run is named after its tag and carries the tags ``release.md5``, ``release.image``,
``git.sha``, ``dolt.commit`` and ``release.alias``, and the artifact ``manifest.json``. A
rollback is a run too, named ``rollback-<tag>``, tagged ``release.rollback`` with the tag
production went back to and ``release.previous_digest`` with the digest it pointed at before.

Every move of ``<image>:production`` (a deploy; a rollback is a deploy to an earlier tag) is a
run named ``deploy-<tag>`` (``rollback-<tag>`` for a rollback) tagged ``release.deploy`` (the tag
production now points at), ``release.deploy.from``, ``release.deploy.by``, ``release.deploy.kind``
and ``git.sha``; its start time is when the move happened.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_kit.sql import quote_string
from platform_kit.tracking.client import call, tags_of
from platform_kit.tracking.tags import DOLT_COMMIT, GIT_SHA
from platform_kit.tracking.tags import RELEASE_ALIAS as ALIAS
from platform_kit.tracking.tags import RELEASE_DEPLOY as DEPLOY
from platform_kit.tracking.tags import RELEASE_DEPLOY_BY as DEPLOY_BY
from platform_kit.tracking.tags import RELEASE_DEPLOY_FROM as DEPLOY_FROM
from platform_kit.tracking.tags import RELEASE_DEPLOY_KIND as DEPLOY_KIND
from platform_kit.tracking.tags import RELEASE_IMAGE as IMAGE
from platform_kit.tracking.tags import RELEASE_MD5 as MD5
from platform_kit.tracking.tags import RELEASE_PREVIOUS_DIGEST as PREVIOUS_DIGEST
from platform_kit.tracking.tags import RELEASE_ROLLBACK as ROLLBACK

if TYPE_CHECKING:  # imported by the CLI's lineage command: mlflow loads on first use only
    from mlflow.tracking import MlflowClient

    from platform_kit.tracking.rest import MlflowRest

EXPERIMENT = "platform-kit-releases"
MANIFEST_FILE = "manifest.json"
_READ_WORKERS = 8


@dataclass(frozen=True)
class ReleaseRecord:
    tag: str
    image: str
    git_sha: str
    dolt_commit: str
    run_id: str
    created_ms: int
    manifest: dict[str, str]


@dataclass(frozen=True)
class DeployRecord:
    """One move of ``<image>:production``."""

    tag: str  # where production pointed after the move
    image: str
    kind: str  # "deploy" or "rollback"
    from_tag: str  # where it pointed before ("" when nothing did, or it is unknown)
    by: str
    git_sha: str
    created_ms: int
    previous_digest: str
    run_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "image": self.image,
            "kind": self.kind,
            "from": self.from_tag or None,
            "by": self.by,
            "git_sha": self.git_sha,
            "created_ms": self.created_ms,
            "previous_digest": self.previous_digest or None,
        }


class ReleaseLog:
    """The releases of every project that shares an MLflow server, newest first."""

    def __init__(self, client: MlflowClient, rest: MlflowRest | None = None) -> None:
        self.client = client
        self.rest = rest  # where set, recorded() reads through it (no mlflow import)

    def record(
        self,
        tag: str,
        image: str,
        manifest: Mapping[str, str],
        *,
        git_sha: str,
        dolt_commit: str,
        alias: str = "production",
    ) -> str:
        """Record a pushed release; call it only after the push succeeded. Returns the run id."""
        tags = {
            MD5: tag,
            IMAGE: image,
            GIT_SHA: git_sha,
            DOLT_COMMIT: dolt_commit,
            ALIAS: alias,
        }
        return self._run(tag, tags, manifest)

    def record_rollback(
        self,
        tag: str,
        image: str,
        manifest: Mapping[str, str],
        *,
        git_sha: str,
        previous_digest: str | None,
    ) -> str:
        tags = {ROLLBACK: tag, MD5: tag, IMAGE: image, GIT_SHA: git_sha}
        if previous_digest:
            tags[PREVIOUS_DIGEST] = previous_digest
        return self._run(f"rollback-{tag}", tags, manifest)

    def record_deploy(
        self,
        tag: str,
        image: str,
        manifest: Mapping[str, str],
        *,
        from_tag: str | None,
        by: str,
        git_sha: str,
        previous_digest: str | None,
        rollback: bool = False,
    ) -> str:
        """Record that ``<image>:production`` now points at ``tag``; call it after the move."""
        tags = {
            DEPLOY: tag,
            DEPLOY_FROM: from_tag or "",
            DEPLOY_BY: by,
            DEPLOY_KIND: "rollback" if rollback else "deploy",
            MD5: tag,
            IMAGE: image,
            GIT_SHA: git_sha,
        }
        if rollback:
            tags[ROLLBACK] = tag  # the tag rollbacks have always carried
        if previous_digest:
            tags[PREVIOUS_DIGEST] = previous_digest
        return self._run(f"{'rollback' if rollback else 'deploy'}-{tag}", tags, manifest)

    def deploys(self, image: str, limit: int = 1000) -> list[DeployRecord]:
        """The moves of ``<image>:production``, newest first (rollbacks recorded before deploys
        existed included)."""
        runs = self._search(f"tags.`{IMAGE}` = {quote_string(image)}", limit)
        out = []
        for run in runs:
            tags = tags_of(run)
            if DEPLOY not in tags and ROLLBACK not in tags:
                continue
            out.append(
                DeployRecord(
                    tag=tags.get(DEPLOY) or tags[ROLLBACK],
                    image=image,
                    kind=tags.get(DEPLOY_KIND, "rollback"),
                    from_tag=tags.get(DEPLOY_FROM, ""),
                    by=tags.get(DEPLOY_BY, ""),
                    git_sha=tags.get(GIT_SHA, ""),
                    created_ms=int(run.info.start_time or 0),
                    previous_digest=tags.get(PREVIOUS_DIGEST, ""),
                    run_id=str(run.info.run_id),
                )
            )
        return out

    def recorded(self, tag: str) -> bool:
        """Whether the release ``tag`` is recorded (two small requests; no manifest read)."""
        if self.rest is None:
            return self.find(tag) is not None
        what = "search the releases"
        found = self.rest.post(
            "experiments/search",
            {"filter": f"name = {quote_string(EXPERIMENT)}", "max_results": 1},
            what,
        )
        experiments = found.get("experiments", [])
        if not experiments:
            return False
        body = {
            "experiment_ids": [experiments[0]["experiment_id"]],
            "filter": f"attributes.run_name = {quote_string(tag)}",
            "max_results": 1,
        }
        return bool(self.rest.post("runs/search", body, what).get("runs"))

    def find(self, tag: str) -> ReleaseRecord | None:
        runs = self._search(f"attributes.run_name = {quote_string(tag)}", 1)
        return self._read(runs[0]) if runs else None

    def all(self, limit: int = 1000) -> list[ReleaseRecord]:
        """Releases, newest first (deploys and rollbacks left out); manifests are read in parallel."""
        runs = [
            r
            for r in self._search("", limit)
            if ROLLBACK not in tags_of(r) and DEPLOY not in tags_of(r)
        ]
        with ThreadPoolExecutor(_READ_WORKERS) as pool:
            return list(pool.map(self._read, runs))

    # -- internals

    def _experiment_id(self, create: bool) -> str | None:
        experiment = call(
            lambda: self.client.get_experiment_by_name(EXPERIMENT), "find the releases"
        )
        if experiment is not None:
            return str(experiment.experiment_id)
        if not create:
            return None
        return str(
            call(
                lambda: self.client.create_experiment(EXPERIMENT), "create the releases experiment"
            )
        )

    def _run(self, name: str, tags: dict[str, str], manifest: Mapping[str, str]) -> str:
        experiment = self._experiment_id(create=True)
        assert experiment is not None
        run = call(
            lambda: self.client.create_run(experiment, run_name=name, tags=tags), "record a release"
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MANIFEST_FILE
            path.write_text(json.dumps(dict(manifest), sort_keys=True, indent=2) + "\n")
            call(
                lambda: self.client.log_artifact(run.info.run_id, str(path)),
                "store the release manifest",
            )
        call(lambda: self.client.set_terminated(run.info.run_id), "finish the release record")
        return str(run.info.run_id)

    def _search(self, filter_string: str, limit: int) -> list[Any]:
        experiment = self._experiment_id(create=False)
        if experiment is None:
            return []
        return list(
            call(
                lambda: self.client.search_runs(
                    [experiment],
                    filter_string=filter_string,
                    max_results=limit,
                    order_by=["attributes.start_time DESC"],
                ),
                "search the releases",
            )
        )

    def _read(self, run: Any) -> ReleaseRecord:
        tags = tags_of(run)
        with tempfile.TemporaryDirectory() as tmp:
            path = call(
                lambda: self.client.download_artifacts(run.info.run_id, MANIFEST_FILE, tmp),
                "read a release manifest",
            )
            manifest = json.loads(Path(path).read_text())
        return ReleaseRecord(
            tag=str(run.info.run_name),
            image=tags.get(IMAGE, ""),
            git_sha=tags.get(GIT_SHA, ""),
            dolt_commit=tags.get(DOLT_COMMIT, ""),
            run_id=str(run.info.run_id),
            created_ms=int(run.info.start_time or 0),
            manifest={k: str(v) for k, v in manifest.items()},
        )
