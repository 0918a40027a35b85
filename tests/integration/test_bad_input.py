"""The malformed-input corpus through ``platform-kit run``: a one-line error, and nothing changes.

A project is synced, trained and released once; then each malformed sheet (the corpus of
tests/unit/test_validate.py, written as CSV) and each malformed ``platform.yaml`` goes through
the whole job. Every case must stop with one clear line, and the Dolt branch heads, the MLflow
runs, versions, aliases and tags, and the registry's tags must be exactly as before.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow.tracking import MlflowClient

from platform_kit import endpoints
from platform_kit import services as svc
from platform_kit.cli import main
from platform_kit.config import load_config
from platform_kit.store import open_store
from tests.conftest import start_services
from tests.unit.test_validate import GOOD, HEADER, MALFORMED

REGISTRY = "127.0.0.1:5000"
CONFIG = """\
project: badinput
dolt: {database: badinput}
mlflow: {experiment: badinput}
sheets:
  - name: people
    source: {file: people.csv}
    primary_key: [id]
    required: [id, name]
    columns: {id: string, name: string, age: int, score: float, vip: bool, born: date,
              seen: datetime, meta: json}
models:
  - name: people-model
    query: "SELECT name AS text, IF(vip, 'vip', 'regular') AS label FROM people"
    trainer: training.intent:train
    params: {epochs: 1, buckets: 64, dim: 4}
release:
  image: REPOSITORY
  base_image: python:3.11-slim
"""
TRAINER = (
    'mkdir -p "$1/model" && echo ok > "$1/model/weights" && echo \'{"n": 1}\' > "$1/metrics.json"\n'
)
# Config cases: the file, then what the one-line error must say.
BAD_CONFIGS = [
    ("project: [unclosed\n", r"bad\.yaml:2: not valid YAML"),
    (CONFIG + "surprise: 1\n", r"surprise.*unknown key"),
    (
        CONFIG.replace(
            "  - name: people-model\n",
            "  - family: f\n    for_each: SELECT nope FROM nowhere\n    name: 'm-{nope}'\n",
        ),
        r"bad\.yaml: model family 'f': its for_each query failed .*nowhere",
    ),
]


def write_csv(path: Path, header: list[Any], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("badinput")
    repository = f"{REGISTRY}/bad-input-{uuid.uuid4().hex[:8]}"  # the registry outlives runs
    (root / "platform.yaml").write_text(CONFIG.replace("REPOSITORY", repository))
    write_csv(root / "people.csv", HEADER, [GOOD, ["p2", "Bob", "", "", "no", "", "", ""]])
    config = load_config(root / "platform.yaml")
    try:
        start_services(config)
        assert main(["--config", str(root / "platform.yaml"), "run"]) == 0
        yield root
    finally:
        svc.services_down(config)
        for image in docker_client.images.list(name=repository):
            for reference in image.tags:
                docker_client.images.remove(reference, noprune=False)


def snapshot(root: Path) -> dict[str, Any]:
    """Everything a bad input must leave alone."""
    config = load_config(root / "platform.yaml")
    client = MlflowClient(endpoints.mlflow_uri(config))
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments], max_results=1000)
    repository = config.release.image.split("/", 1)[1]  # type: ignore[union-attr]
    tags = requests.get(f"http://{REGISTRY}/v2/{repository}/tags/list", timeout=10).json()
    return {
        "dolt": open_store(config).branches(),
        "runs": sorted((r.info.run_id, r.info.status, json.dumps(r.data.tags)) for r in runs),
        "models": [(m.name, m.aliases, m.tags) for m in client.search_registered_models()],
        "versions": sorted(
            (v.name, v.version, json.dumps(v.tags)) for v in client.search_model_versions()
        ),
        "registry": sorted(tags.get("tags") or []),
    }


def run_fails(root: Path, capfd: pytest.CaptureFixture[str], config: Path | None = None) -> str:
    """Run the job expecting exit 2; the error: one line, or a count and one line per problem."""
    capfd.readouterr()
    code = main(["--config", str(config or root / "platform.yaml"), "run"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2, err
    start = next((i for i, line in enumerate(err) if line.startswith("error: ")), None)
    assert start is not None, err
    error = err[start:]
    assert all(line.startswith("  - sheet 'people'") for line in error[1:]), error
    return "\n".join(error)


CASES = [m for m in MALFORMED if m[0] != "NUL byte"]  # csv cannot carry NUL; see below


@pytest.mark.parametrize(
    ("header", "rows", "expected"), [m[1:] for m in CASES], ids=[m[0] for m in CASES]
)
def test_malformed_sheet_changes_nothing(
    project: Path,
    capfd: pytest.CaptureFixture[str],
    header: list[Any] | None,
    rows: list[list[Any]],
    expected: str,
) -> None:
    good = (project / "people.csv").read_bytes()
    before = snapshot(project)
    write_csv(project / "people.csv", header if header is not None else HEADER, rows)
    try:
        line = run_fails(project, capfd)
    finally:
        (project / "people.csv").write_bytes(good)
    assert "sheet 'people'" in line and re.search(expected, line), line
    assert snapshot(project) == before


def test_nul_byte_in_a_csv_is_named(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    good = (project / "people.csv").read_bytes()
    before = snapshot(project)
    (project / "people.csv").write_bytes(good.replace(b"Bob", b"B\x00b"))
    try:
        line = run_fails(project, capfd)
    finally:
        (project / "people.csv").write_bytes(good)
    assert "people" in line and ("NUL" in line or "control characters" in line), line
    assert snapshot(project) == before


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS, ids=["yaml", "unknown-key", "family"])
def test_malformed_config_changes_nothing(
    project: Path, capfd: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    before = snapshot(project)
    bad = project / "bad.yaml"
    bad.write_text(text.replace("REPOSITORY", f"{REGISTRY}/unused"))
    try:
        line = run_fails(project, capfd, bad)
    finally:
        bad.unlink()
    assert re.search(expected, line), line
    assert snapshot(project) == before
