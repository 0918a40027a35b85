"""A partial failure still ships (issue 14 item 3), on the real engine, registry and MLflow.

Three customers train and release; then one customer's data grows, another's shrinks below what
the trainer accepts, and a new customer arrives with too little data. The release goes ahead
with the models that have a production version, checked in the registry's image labels and the
MLflow release record rather than in the run's own report. Two image builds in all (vfs is slow).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mysql.connector
import pytest
import requests
from mlflow.tracking import MlflowClient

from platform_kit.cli import main
from platform_kit.config import load_config
from platform_kit.errors import ReleaseError
from platform_kit.pipeline import run_pipeline
from platform_kit.project import Project
from platform_kit.release.manifest import manifest_md5
from platform_kit.store.dolt import DoltStore
from tests.conftest import REGISTRY, Services

V2 = "application/vnd.docker.distribution.manifest.v2+json"


def sql(services: Services, database: str, *statements: str) -> None:
    conn = mysql.connector.connect(
        host=services.dolt.host, port=services.dolt.port, user="root", database=database
    )
    cur = conn.cursor(buffered=True)  # CALL DOLT_COMMIT answers with a row
    for statement in statements:
        cur.execute(statement)
    conn.close()


def rows(customer: str, n: int, start: int = 0) -> str:
    values = ", ".join(
        f"('{customer}', {i}, 'text {customer} {i} {'good' if i % 2 else 'bad'}', "
        f"'{'yes' if i % 2 else 'no'}')"
        for i in range(start, start + n)
    )
    return f"INSERT INTO examples VALUES {values}"


def labels(image: str, tag: str) -> dict[str, str]:
    """The image's labels, read from the registry's HTTP API (not through the kit)."""
    host, repo = image.split("/", 1)
    found = requests.get(
        f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": V2}, timeout=5
    )
    found.raise_for_status()
    blob = requests.get(
        f"http://{host}/v2/{repo}/blobs/{found.json()['config']['digest']}", timeout=5
    )
    return dict(blob.json()["config"]["Labels"])


def tags(image: str) -> list[str]:
    """The release tags of ``image`` (not the runtime's ``kit-runtime-*`` beside them)."""
    host, repo = image.split("/", 1)
    found = requests.get(f"http://{host}/v2/{repo}/tags/list", timeout=5).json()["tags"]
    return sorted(t for t in found if not t.startswith("kit-runtime-"))


def recorded(client: MlflowClient, image: str, tmp: Path) -> dict[str, dict[str, str]]:
    """The release records of ``image`` in MLflow: tag -> the manifest artifact it stored."""
    experiment = client.get_experiment_by_name("platform-kit-releases")
    if experiment is None:
        return {}
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`release.image` = '{image}'"
    )
    found = {}
    for run in runs:
        if "release.md5" not in run.data.tags:
            continue  # a deploy or rollback
        path = client.download_artifacts(run.info.run_id, "manifest.json", str(tmp))
        found[run.data.tags["release.md5"]] = json.loads(Path(path).read_text())
    return found


@pytest.fixture
def image(docker_client: Any) -> Iterator[str]:
    """A unique image repository, removed from the engine afterwards (vfs keeps a full copy of
    every layer); what was pushed stays in the registry."""
    name = f"{REGISTRY}/partial-test-{uuid.uuid4().hex[:8]}"
    yield name
    for found in docker_client.images.list():
        for reference in found.tags:
            if reference.rsplit(":", 1)[0] == name:
                docker_client.images.remove(reference, noprune=False)


@pytest.mark.slow
def test_a_failed_model_keeps_its_production_version_and_the_release_ships(
    services: Services,
    image: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    suffix = uuid.uuid4().hex[:8]  # registry model names are global: unique per test
    database, prefix = f"partial_{suffix}", f"part-{suffix}"
    a, b, c, d = (f"{prefix}-{x}" for x in "abcd")
    root = tmp_path / "project"
    root.mkdir()
    path = root / "platform.yaml"
    text = (
        f"project: {prefix}\n"
        f"dolt: {{database: {database}, server: 'mysql://root@"
        f"{services.dolt.host}:{services.dolt.port}'}}\n"
        f"mlflow: {{tracking_uri: '{services.mlflow_uri}'}}\n"
        "models:\n"
        "  - family: part\n"
        "    for_each: SELECT customer_id FROM customers\n"
        f"    name: '{prefix}-{{customer_id}}'\n"
        "    query: SELECT text, label FROM examples WHERE customer_id = %(customer_id)s\n"
        "    trainer: training.intent:train\n"
        "    params: {epochs: 2, buckets: 256}\n"
        f"release: {{image: {image}}}\n"
    )
    path.write_text(text)
    DoltStore(services.dolt.host, services.dolt.port, "root", "", database).create_database()
    sql(
        services,
        database,
        "CREATE TABLE customers (customer_id VARCHAR(50) PRIMARY KEY)",
        "CREATE TABLE examples (customer_id VARCHAR(50), n INT, text VARCHAR(200), "
        "label VARCHAR(10), PRIMARY KEY (customer_id, n))",
        "INSERT INTO customers VALUES ('a'), ('b'), ('c')",
        rows("a", 8),
        rows("b", 8),
        rows("c", 8),
        "CALL DOLT_COMMIT('-Am', 'three customers')",
    )
    client = MlflowClient(services.mlflow_uri)

    # First run: all three trained and released (build 1).
    first = run_pipeline(Project(load_config(path)))
    assert first.failed == [] and sorted(first.trained) == [a, b, c]
    v1 = {a: "1", b: "1", c: "1"}
    assert first.release is not None and first.release["manifest"] == v1
    tag1 = manifest_md5(v1)
    assert json.loads(labels(image, tag1)["platform-kit.manifest"]) == v1

    # a grows (retrains), b shrinks to one row (its training fails), d is new with one row.
    sql(
        services,
        database,
        rows("a", 4, start=8),
        "DELETE FROM examples WHERE customer_id = 'b' AND n > 0",
        "INSERT INTO customers VALUES ('d')",
        rows("d", 1),
        "CALL DOLT_COMMIT('-Am', 'a grows, b shrinks, d arrives')",
    )
    before = (tags(image), recorded(client, image, tmp_path / "r0"))
    assert before == ([tag1], {tag1: v1})

    # require_all: d has never been in production, so the release is refused: a was trained,
    # but nothing is pushed and nothing recorded.
    path.write_text(text.replace("release: {", "release: {require_all: true, "))
    with pytest.raises(ReleaseError, match=f"no 'production' version for: {d}"):
        run_pipeline(Project(load_config(path)))
    assert client.get_model_version_by_alias(a, "production").version == "2"
    assert (tags(image), recorded(client, image, tmp_path / "r1")) == before

    # Without it, through the CLI: b and d fail again (exit 1, both named), the release ships
    # a's new version, b's previous production version, c unchanged, and leaves d out (build 2).
    path.write_text(text)
    capsys.readouterr()
    code = main(["--config", str(path), "run", "--json", "--workers", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    report = json.loads(out)
    assert sorted(report["failed"]) == [b, d] and report["trained"] == []
    [failure] = [line for line in err.splitlines() if "failed to train" in line]
    assert (
        failure.startswith("error: 2 model(s) failed to train: ") and b in failure and d in failure
    )
    assert f"left out, never in production: {d}" in err
    assert any(
        r.levelname == "WARNING"
        and "left out of the release" in r.getMessage()
        and d in r.getMessage()
        for r in caplog.records
    )
    v2 = {a: "2", b: "1", c: "1"}
    tag2 = manifest_md5(v2)
    assert report["release"]["tag"] == tag2
    assert report["release"]["left_out"] == [d]
    shipped = labels(image, tag2)
    assert json.loads(shipped["platform-kit.manifest"]) == v2
    assert shipped["platform-kit.manifest.md5"] == tag2
    # The content too: b's image files are those of its version 1's run, a's of its version 2's.
    content = json.loads(shipped["platform-kit.models"])
    assert set(content) == {a, b, c}
    for name, version in v2.items():
        assert content[name]["run_id"] == client.get_model_version(name, version).run_id
    assert content[b] == json.loads(labels(image, tag1)["platform-kit.models"])[b]
    assert tags(image) == sorted([tag1, tag2])
    assert recorded(client, image, tmp_path / "r2") == {tag1: v1, tag2: v2}
    assert client.get_model_version_by_alias(b, "production").version == "1"
