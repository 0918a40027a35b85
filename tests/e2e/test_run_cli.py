"""The main job through the installed CLI: both phases of the bundled example, end to end.

Phase 1 syncs the first export and trains every model; phase 2 syncs an analyst's edit and must
retrain exactly the edited and the added customer, with a new release tag. Real Dolt, MLflow,
Docker engine and registry throughout.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from platform_kit.release.manifest import manifest_md5
from tests.conftest import require
from tests.e2e.conftest import cli, cli_json

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TAGS = (
    "git.sha",
    "dolt.commit",
    "dolt.branch",
    "dolt.database",
    "data.fingerprint",
    "model.name",
    "mlflow.source.git.commit",
)


# Values only a leak could put anywhere: the key's content, the token, the password.
CANARY_KEY = "-----BEGIN PRIVATE KEY-----canary-google-key-3b7d-----END PRIVATE KEY-----"
CANARIES = {
    "GITHUB_TOKEN": "ghp_canaryToken0e91c4",
    "DOLT_PASSWORD": "dolt-canary-pw-52aa",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-canary-pw-1f0d",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Any:
    root = tmp_path_factory.mktemp("example")
    shutil.copy(EXAMPLES / "platform.yaml", root / "platform.yaml")
    shutil.copytree(EXAMPLES / "sheets", root / "sheets")
    # A registry repository of this test's own, so reruns of the suite start clean.
    repository = f"127.0.0.1:5000/e2e-{uuid.uuid4().hex[:8]}"  # the registry outlives runs
    text = (
        (root / "platform.yaml").read_text().replace("127.0.0.1:5000/intent-adapters", repository)
    )
    (root / "platform.yaml").write_text(text)
    yield root
    cli("services", "down", cwd=root, check=False)
    for image in docker_client.images.list(name=repository):  # vfs keeps full layer copies
        for reference in image.tags:
            docker_client.images.remove(reference, noprune=False)


def secrets_env(project: Path) -> dict[str, str]:
    # A realistic slip: the service-account key sits inside the project directory.
    key = project / "secrets" / "google-key.json"
    key.parent.mkdir(exist_ok=True)
    key.write_text(json.dumps({"type": "service_account", "private_key": CANARY_KEY}))
    return {**CANARIES, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}


def test_both_phases_of_the_example(project: Path, docker_client: Any) -> None:
    done = cli("run", "--json", "--verbose", cwd=project, timeout=1500, env=secrets_env(project))
    first = json.loads(done.stdout)
    if first["release_skipped"]:
        require("Docker engine", first["release_skipped"])
    assert len(first["trained"]) == 22 and not first["failed"]
    assert {s["sheet"] for s in first["sheets"] if s["commit"]} == {"customers", "examples"}
    tag1 = first["release"]["tag"]
    assert tag1 == manifest_md5(first["release"]["manifest"])
    assert_no_secrets(project, done.stdout + done.stderr, first["release"], docker_client)

    shutil.copytree(EXAMPLES / "sheets-v2", project / "sheets", dirs_exist_ok=True)
    second = cli_json("run", cwd=project, timeout=1500)
    assert sorted(second["trained"]) == ["intent-skylark-air", "intent-sunpeak-power"]
    reasons = {m["name"]: m["reason"] for m in second["plan"]["models"] if m["train"]}
    assert reasons == {"intent-skylark-air": "data changed", "intent-sunpeak-power": "new model"}
    tag2 = second["release"]["tag"]
    assert tag2 != tag1
    m1, m2 = first["release"]["manifest"], second["release"]["manifest"]
    assert {k for k in m2 if m1.get(k) != m2[k]} == {"intent-skylark-air", "intent-sunpeak-power"}

    # Dolt: one sync commit per changed sheet, with the docs/architecture.md message, merged into main.
    log = cli_json("data", "log", "-n", "30", cwd=project)
    messages = [c["message"] for c in log]
    assert sum(m.startswith("sync examples: +") for m in messages) == 2
    assert any(
        m.startswith("sync customers: +1 ~0 -0 rows (source sheets/customers.csv@")
        for m in messages
    )
    main = log[0]["hash"]
    assert second["main_commit"] == main

    # MLflow: the docs/architecture.md tags on the new version and its run.
    status = cli_json("services", "status", cwd=project)
    uri = next(s["url"] for s in status["services"] if s["name"] == "mlflow")
    client = MlflowClient(uri)
    version = client.get_model_version_by_alias("intent-skylark-air", "production")
    assert version.version == m2["intent-skylark-air"]
    for tag in TAGS:
        assert version.tags.get(tag), tag
    assert version.tags["dolt.commit"] == main
    run = client.get_run(version.run_id)
    assert run.data.tags["data.fingerprint"] == version.tags["data.fingerprint"]

    # A rerun with no change does nothing new.
    third = cli_json("run", cwd=project, timeout=900)
    assert third["nothing_new"] and not third["trained"] and third["release"]["tag"] == tag2

    # Lineage: release -> versions -> runs -> git and Dolt commits -> the sheet syncs behind them.
    lineage = cli_json("lineage", tag2, cwd=project)
    assert lineage["release_tag"] == tag2
    skylark = next(v for v in lineage["versions"] if v["name"] == "intent-skylark-air")
    assert skylark["dolt_commit"] == main and skylark["run_id"] == version.run_id
    assert {s["sheet"] for s in skylark["syncs"]} == {"customers", "examples"}
    human = cli("lineage", tag2, cwd=project).stdout
    assert "intent-sunpeak-power" in human and "sheet examples @" in human
    back = cli_json("lineage", "--dolt-commit", main, cwd=project)
    assert [r["tag"] for r in back["releases"]] == [tag2]
    json.dumps(lineage)  # machine-readable


def assert_no_secrets(project: Path, output: str, release: Any, docker_client: Any) -> None:
    """No canary in the output or logs, any MLflow param, tag or release manifest, or the image."""
    canaries = [CANARY_KEY, *CANARIES.values()]

    def clean(text: str, where: str) -> None:
        leaked = [c for c in canaries if c in text]
        assert not leaked, f"{leaked} leaked into {where}"

    clean(output, "the output of 'platform-kit run'")
    for log in (project / ".platform").rglob("*.log"):
        clean(log.read_text(errors="replace"), str(log))
    status = cli_json("services", "status", cwd=project)
    uri = next(s["url"] for s in status["services"] if s["name"] == "mlflow")
    client = MlflowClient(uri)
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=1000):
            clean(json.dumps([run.data.params, run.data.tags]), f"run {run.info.run_name}")
    for model in client.search_registered_models():
        clean(json.dumps(model.tags), f"model {model.name}")
    for version in client.search_model_versions(max_results=1000):
        clean(json.dumps(version.tags), f"{version.name} v{version.version}")
    releases = client.search_runs(
        [client.get_experiment_by_name("platform-kit-releases").experiment_id]
    )
    for run in releases:
        manifest = client.download_artifacts(run.info.run_id, "manifest.json")
        clean(Path(manifest).read_text(), f"release {run.info.run_name}")

    # docker save: the config (env, labels, history) and every layer, uncompressed.
    reference = release["reference"]
    repository, tag = reference.rsplit(":", 1)
    image = docker_client.images.pull(repository, tag=tag)  # assembled in the registry
    tail = b""
    for chunk in image.save(named=True):
        window = tail + chunk
        for canary in canaries:
            assert canary.encode() not in window, f"{canary!r} is in the image {reference}"
        tail = window[-256:]
