"""Release records in MLflow: experiment ``platform-kit-releases``, one run per release.

Run name = tag; tags ``release.md5``, ``release.image``, ``git.sha``, ``dolt.commit``;
artifact ``manifest.json``. Rollbacks are runs too, named ``rollback-<tag>`` and tagged
``release.rollback`` with the tag production went back to.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from platform_kit.tracking.client import call, tags_of

EXPERIMENT = "platform-kit-releases"
ROLLBACK = "release.rollback"


@dataclass(frozen=True)
class ReleaseRecord:
    tag: str
    image: str
    git_sha: str
    dolt_commit: str
    run_id: str
    created_ms: int
    manifest: dict[str, str]


class ReleaseLog:
    def __init__(self, client: MlflowClient) -> None:
        self.client = client

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

    def record(
        self, tag: str, image: str, manifest: dict[str, str], git_sha: str, dolt_commit: str
    ) -> str:
        """Record a pushed release (only call this after the push succeeded)."""
        tags = {
            "release.md5": tag,
            "release.image": image,
            "git.sha": git_sha,
            "dolt.commit": dolt_commit,
        }
        return self._run(tag, tags, manifest)

    def record_rollback(self, tag: str, image: str, manifest: dict[str, str], git_sha: str) -> str:
        tags = {ROLLBACK: tag, "release.md5": tag, "release.image": image, "git.sha": git_sha}
        return self._run(f"rollback-{tag}", tags, manifest)

    def _run(self, name: str, tags: dict[str, str], manifest: dict[str, str]) -> str:
        experiment = self._experiment_id(create=True)
        assert experiment is not None
        run = call(
            lambda: self.client.create_run(experiment, run_name=name, tags=tags), "record a release"
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "manifest.json"
            path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
            call(
                lambda: self.client.log_artifact(run.info.run_id, str(path)),
                "store the release manifest",
            )
        call(lambda: self.client.set_terminated(run.info.run_id), "finish the release record")
        return str(run.info.run_id)

    def find(self, tag: str) -> ReleaseRecord | None:
        runs = self._search(f"attributes.run_name = '{_quote(tag)}'", 1)
        return self._read(runs[0]) if runs else None

    def all(self, limit: int = 1000) -> list[ReleaseRecord]:
        """Releases, newest first (rollbacks left out)."""
        return [self._read(r) for r in self._search("", limit) if ROLLBACK not in tags_of(r)]

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
                lambda: self.client.download_artifacts(run.info.run_id, "manifest.json", tmp),
                "read a release manifest",
            )
            manifest = json.loads(Path(path).read_text())
        return ReleaseRecord(
            tag=str(run.info.run_name),
            image=tags.get("release.image", ""),
            git_sha=tags.get("git.sha", ""),
            dolt_commit=tags.get("dolt.commit", ""),
            run_id=str(run.info.run_id),
            created_ms=int(run.info.start_time or 0),
            manifest={k: str(v) for k, v in manifest.items()},
        )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
