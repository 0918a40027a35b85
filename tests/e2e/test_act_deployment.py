"""The real deployment, proven: the workflow files run with act, as a team's runners run them.

``infra/act-pipeline.sh`` runs each job as the runner user (not root, its own
HOME, virtualenv and ``docker login``), in its own copy of a team repository, against the
production-shaped deployment of ``infra/prod-up.sh``: Dolt with per-role users and passwords,
MLflow with basic auth on PostgreSQL, a registry that wants a login. Repository secrets and
variables reach the jobs the way GitHub passes them. Every outcome is checked through
independent clients (MLflow's REST API, the registry's API, SQL as root), never the kit's reports.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mysql.connector
import pytest
import requests

from platform_kit.testing.github_emulator import GitHubEmulator
from tests.e2e.act_summaries import assert_pipeline_summaries
from tests.e2e.conftest import kit_binary
from tests.prod import ProdDeployment

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "act-pipeline.sh"
CUSTOMERS = ("acme", "globex", "initech", "umbrella")  # four models: three matrix shards
LABELS = ("billing", "cancel", "greeting")
REPO = "team/intent-models"
TOKEN = "e2e-github-token"

PLATFORM_YAML = """\
project: intent-adapters
dolt:
  database: training
  server: null
  main_branch: main
mlflow:
  tracking_uri: null
  experiment: intent-adapters
sheets:
  - name: customers
    source: {file: sheets/customers.csv}
    table: customers
    primary_key: [customer_id]
    columns: {customer_id: string, active: bool}
  - name: examples
    source: {file: sheets/examples.csv}
    table: examples
    primary_key: [example_id]
    columns: {example_id: string, customer_id: string, text: string, label: string}
models:
  - family: intent
    for_each: "SELECT customer_id FROM customers WHERE active"
    name: "intent-{customer_id}"
    query: "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s ORDER BY example_id"
    trainer: training.intent:train
    params: {epochs: 8, lr: 0.05, batch_size: 8, eval_fraction: 0.25, seed: 7}
    promote_if: {metric: accuracy, min: 0.0}
release:
  image: 127.0.0.1:5000/intent-adapters
  base_image: python:3.11-slim
  alias: production
github:
  repository: team/intent-models
"""


def write_sheets(sheets: Path, customers: tuple[str, ...], edited: str | None = None) -> None:
    sheets.mkdir(parents=True, exist_ok=True)
    with open(sheets / "customers.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "active"])
        writer.writerows([c, "TRUE"] for c in customers)
    with open(sheets / "examples.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["example_id", "customer_id", "text", "label"])
        for customer in customers:
            for i in range(24):
                label = LABELS[i % len(LABELS)]
                text = f"{label} request {i} for {customer}"
                if customer == edited and i < 6:
                    text += " (reworded by an analyst)"
                writer.writerow([f"{customer}-{i:03d}", customer, text, label])


@dataclass
class ActProject:
    name: str
    work: Path
    source: Path
    prod: ProdDeployment
    logs: list[str]

    def model(self, customer: str) -> str:
        return f"{self.name}-intent-{customer}"

    @property
    def database(self) -> str:
        return self.name.replace("-", "_")

    def act(self, *args: str, **env: str) -> str:
        """``infra/act-pipeline.sh ARGS`` against the deployment; its whole output."""
        result = subprocess.run(
            ["bash", str(SCRIPT), *args],
            cwd=ROOT,
            env={
                **_clean_environ(),
                "ACT_PROJECT": self.name,
                "ACT_WORK": str(self.work),
                "ACT_SOURCE": str(self.source),
                **env,
            },
            capture_output=True,
            text=True,
            timeout=1500,
        )
        out = result.stdout + result.stderr
        self.logs.append(out)
        if result.returncode != 0:
            pytest.fail(
                f"act-pipeline.sh {' '.join(args)} exited {result.returncode}:\n{out[-6000:]}"
            )
        return out

    def kit(
        self, role: str, *args: str, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """The kit as a job of ``role`` runs it (its Dolt user, MLflow's credentials)."""
        result = subprocess.run(
            [kit_binary(), "--config", str(self.work / "analyst" / "platform.yaml"), *args],
            env={**_clean_environ(), **self.prod.job_env(role), **env},  # type: ignore[arg-type]
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.logs.append(result.stdout + result.stderr)
        if check and result.returncode != 0:
            pytest.fail(
                f"platform-kit {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result


def _clean_environ() -> dict[str, str]:
    drop = ("MLFLOW_", "DOLT_", "GITHUB_", "PK_", "ACT_", "DOCKER_CONFIG")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


# ---------------------------------------------------------------------------- independent clients


class Clients:
    def __init__(self, prod: ProdDeployment, database: str) -> None:
        self.prod = prod
        self.database = database
        env = prod.env
        self.mlflow = requests.Session()
        self.mlflow.auth = (env["PK_MLFLOW_ADMIN_USERNAME"], env["PK_MLFLOW_ADMIN_PASSWORD"])
        self.registry = requests.Session()
        self.registry.auth = (env["PK_REGISTRY_USERNAME"], env["PK_REGISTRY_PASSWORD"])

    def versions(self, model: str) -> list[dict[str, Any]]:
        response = self.mlflow.get(
            f"{self.prod.mlflow_uri}/api/2.0/mlflow/model-versions/search",
            params={"filter": f"name='{model}'"},
            timeout=30,
        )
        response.raise_for_status()
        return list(response.json().get("model_versions", []))

    def production(self, model: str) -> str | None:
        response = self.mlflow.get(
            f"{self.prod.mlflow_uri}/api/2.0/mlflow/registered-models/get",
            params={"name": model},
            timeout=30,
        )
        response.raise_for_status()
        aliases = response.json()["registered_model"].get("aliases", [])
        return next((a["version"] for a in aliases if a["alias"] == "production"), None)

    def tags(self, repository: str) -> list[str]:
        response = self.registry.get(
            f"http://{self.prod.registry}/v2/{repository}/tags/list", timeout=30
        )
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def digest(self, repository: str, tag: str) -> str:
        response = self.registry.head(
            f"http://{self.prod.registry}/v2/{repository}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.headers["Docker-Content-Digest"])

    def main_head(self) -> str:
        with mysql.connector.connect(
            host=self.prod.dolt_host,
            port=self.prod.dolt_port,
            user="root",
            password=self.prod.env["PK_DOLT_ROOT_PASSWORD"],
            database=self.database,
        ) as conn:
            cur = conn.cursor()
            cur.execute("SELECT hash FROM dolt_branches WHERE name = 'main'")
            return str(cur.fetchall()[0][0])  # type: ignore[index]


def version_tags(version: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in version.get("tags", [])}


# ---------------------------------------------------------------------------- the story


@pytest.fixture(scope="module")
def project(prod_deployment: ProdDeployment) -> Iterator[ActProject]:
    # Under /tmp, not pytest's private temp dir: the runner user reads the settings files there.
    work = Path(tempfile.mkdtemp(prefix="pk-act-e2e-"))
    work.chmod(0o755)
    source = work / "source"
    source.mkdir()
    (source / "platform.yaml").write_text(PLATFORM_YAML)
    write_sheets(source / "sheets", CUSTOMERS)
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    yield ActProject(name, work, source, prod_deployment, [])
    shutil.rmtree(work, ignore_errors=True)


def test_the_pipeline_runs_as_a_team_runs_it(project: ActProject) -> None:
    prod = project.prod
    clients = Clients(prod, project.database)
    image_repo = project.name

    # 1. Run workflow (workflow_dispatch): plan, a matrix of three train shards, release. Each
    #    job's summary is kept (act deletes GITHUB_STEP_SUMMARY with the job).
    summaries = project.work / "summaries"
    summaries.mkdir(mode=0o1777)
    summaries.chmod(0o1777)
    out = project.act(
        "dispatch",
        "--var",
        "PLATFORM_KIT_MAX_JOBS=3",
        "--env",
        f"PLATFORM_KIT_SUMMARY_DIR={summaries}",
        "--env",
        f"GITHUB_RUN_ID={uuid.uuid4().int % 10**9}",
    )
    shards = sorted(set(re.findall(r"train (\d)/3 ", out)))
    assert shards == ["1", "2", "3"], "the plan did not fan out into three train jobs"
    assert "Job succeeded" in out and "Job failed" not in out
    head = clients.main_head()
    for customer in CUSTOMERS:
        versions = clients.versions(project.model(customer))
        assert len(versions) == 1, customer
        assert clients.production(project.model(customer)) == "1"
        assert version_tags(versions[0])["dolt.commit"] == head  # trained on the data of main
    assert_pipeline_summaries(summaries, [project.model(c) for c in CUSTOMERS], 3)
    first_tags = [t for t in clients.tags(image_repo) if not t.startswith(("production", "kit-"))]
    assert len(first_tags) == 1 and re.fullmatch(r"[0-9a-f]{32}", first_tags[0]), first_tags
    first = first_tags[0]
    # The pipeline's deploy job (gated by the production environment) moved production to it.
    assert clients.digest(image_repo, "production") == clients.digest(image_repo, first)

    # 2. An analyst's edit: synced by kit_sync to sheets/* branches, merged by kit_merge with
    #    --notify (to the GitHub emulator); the repository_dispatch run trains exactly the changed
    #    models: the reworded customer and the new one.
    analyst = project.work / "analyst"
    analyst.mkdir()
    yaml = (project.work / "prod" / "repo" / "project" / "platform.yaml").read_text()
    (analyst / "platform.yaml").write_text(yaml)
    write_sheets(analyst / "sheets", (*CUSTOMERS, "hooli"), edited="globex")
    project.kit("sync", "sync")
    project.kit("merge", "data", "merge", "sheets/customers")
    with GitHubEmulator(repository=REPO, token=TOKEN) as github:
        project.kit(
            "merge",
            "data",
            "merge",
            "sheets/examples",
            "--notify",
            GITHUB_API_URL=github.api_url,
            GITHUB_TOKEN=TOKEN,
        )
        sent = github.repository_dispatches()
    assert len(sent) == 1, sent
    assert sent[0]["client_payload"]["commit"] == clients.main_head()
    event = project.work / "event.json"
    event.write_text(
        json.dumps({"action": sent[0]["event_type"], "client_payload": sent[0]["client_payload"]})
    )
    out = project.act(
        "merge", "--var", "PLATFORM_KIT_MAX_JOBS=3", ACT_SEED="0", ACT_EVENT=str(event)
    )
    assert "Job failed" not in out
    new_head = clients.main_head()
    retrained = {
        customer
        for customer in (*CUSTOMERS, "hooli")
        if any(
            version_tags(v)["dolt.commit"] == new_head
            for v in clients.versions(project.model(customer))
        )
    }
    assert retrained == {"globex", "hooli"}
    assert clients.production(project.model("globex")) == "2"
    assert clients.production(project.model("acme")) == "1"
    second = [
        t for t in clients.tags(image_repo) if re.fullmatch(r"[0-9a-f]{32}", t) and t != first
    ]
    assert len(second) == 1, clients.tags(image_repo)
    assert clients.digest(image_repo, "production") == clients.digest(image_repo, second[0])

    # 3. rollback-production.yml with image_tag: production points at the first release again.
    project.act("rollback", first)
    assert clients.digest(image_repo, "production") == clients.digest(image_repo, first)

    # 4. A wrong password for each service fails with one line naming that service.
    wrong = "wrong-" + uuid.uuid4().hex
    dolt = project.kit("read", "plan", check=False, DOLT_PASSWORD=wrong)
    mlflow = project.kit("read", "plan", check=False, MLFLOW_TRACKING_PASSWORD=wrong)
    docker_config = project.work / "docker-wrong"
    docker_config.mkdir()
    auth = f"{prod.env['PK_REGISTRY_USERNAME']}:{wrong}".encode()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {prod.registry: {"auth": base64.b64encode(auth).decode()}}})
    )
    registry = project.kit(
        "read", "release", "build", "--push", check=False, DOCKER_CONFIG=str(docker_config)
    )
    for result, service in ((dolt, "Dolt"), (mlflow, "MLflow"), (registry, prod.registry)):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode != 0, (service, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error:") and service in lines[0], lines
        assert wrong not in result.stdout + result.stderr

    # 5. No secret of the deployment appears in any job's log or any output.
    everything = "\n".join(project.logs)
    for secret in prod.secrets():
        assert secret not in everything
    assert TOKEN not in everything
