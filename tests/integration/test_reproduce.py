"""`platform-kit reproduce` on real Dolt and MLflow servers, with tiny models.

Each test's project is its own Git repository holding platform.yaml and the trainers (a copy of
the sample intent trainer, and a noisy command trainer), so that reproduce checks the recorded
SHA out in a scratch worktree as it would in a real project.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from platform_kit.cli import main
from platform_kit.config import Config, load_config
from platform_kit.store import open_store
from platform_kit.store.base import ChangeSet, TableSchema
from platform_kit.tracking.mlflow_registry import MlflowModelRegistry, registry_for
from platform_kit.train import ModelStatus, train
from tests.conftest import Services

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = TableSchema(
    {"example_id": "string", "text": "string", "label": "string"}, ("example_id",)
)
# A trainer that declares no determinism: its metric wobbles and its model file is random.
NOISY = """\
import json, os, random, sys
out = sys.argv[2]
os.makedirs(os.path.join(out, "model"), exist_ok=True)
with open(os.path.join(out, "model", "weights.bin"), "wb") as fh:
    fh.write(os.urandom(64))
rows = sum(1 for _ in open(sys.argv[1])) - 1
json.dump({"accuracy": 0.8 + random.uniform(-0.01, 0.01), "rows": rows},
          open(os.path.join(out, "metrics.json"), "w"))
"""


def git(root: Path, *argv: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *argv],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def make_project(root: Path, services: Services) -> tuple[Config, MlflowModelRegistry]:
    database = f"r{uuid.uuid4().hex[:10]}"
    root.mkdir(parents=True)
    shutil.copytree(REPO / "training", root / "training", ignore=shutil.ignore_patterns("__py*"))
    (root / "noisy.py").write_text(NOISY)
    (root / "platform.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: {database}
            dolt: {{database: {database}, server: "mysql://root@{services.dolt.host}:{services.dolt.port}"}}
            mlflow: {{tracking_uri: "{services.mlflow_uri}", experiment: {database}}}
            models:
              - name: {database}-intent
                query: "SELECT text, label FROM examples"
                trainer: training.intent:train
                params: {{epochs: 2, lr: 0.05, buckets: 128, dim: 8, seed: 7}}
              - name: {database}-noisy
                query: "SELECT text, label FROM examples"
                trainer: {{command: "python3 noisy.py {{data}} {{out}}", tolerance: 0.05}}
              - name: {database}-strict
                query: "SELECT text, label FROM examples"
                trainer: {{command: "python3 noisy.py {{data}} {{out}}"}}
            """
        )
    )
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "project")
    config = load_config(root / "platform.yaml")
    store = open_store(config)
    store.create_database()
    rows = [
        {
            "example_id": f"e{i:03d}",
            "text": f"{'refund card' if i % 2 else 'track parcel'} {i}",
            "label": "billing" if i % 2 else "shipping",
        }
        for i in range(30)
    ]
    store.commit_changes("main", [ChangeSet("examples", EXAMPLES, inserts=rows)], "examples")
    return config, registry_for(config)


@pytest.fixture
def project(services: Services, tmp_path: Path) -> tuple[Config, MlflowModelRegistry]:
    return make_project(tmp_path / "proj", services)


def reproduce(config: Config, ref: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(["--config", str(config.path), "reproduce", ref, "--json"])
    return code, json.loads(capsys.readouterr().out)


def trained(config: Config, registry: MlflowModelRegistry, *names: str) -> None:
    report = train(config, open_store(config), registry, names=list(names), workers=1)
    assert {r.status for r in report.results} == {ModelStatus.TRAINED}, report.to_json()


@pytest.mark.slow
def test_a_version_reproduced_exactly(
    project: tuple[Config, MlflowModelRegistry], capsys: pytest.CaptureFixture[str]
) -> None:
    config, registry = project
    name = f"{config.project}-intent"
    trained(config, registry, name)
    tags = registry.version(name, 1).tags
    assert tags["env.device"] == "cpu" and tags["env.python"].startswith("3.")
    assert tags["env.torch"] and tags["env.lock"] and tags["env.os"]
    assert tags["artifact.digest"].startswith("sha256:")
    assert tags["trainer.deterministic"] == "true"
    # The code moves on after training: reproduce uses the recorded SHA, not the checkout.
    (config.root / "training" / "intent.py").write_text("raise SystemExit('not this code')\n")
    git(config.root, "commit", "-qam", "break the trainer")

    code, out = reproduce(config, f"{name}@1", capsys)
    assert (code, out["summary"], out["differences"]) == (0, "reproduced exactly", [])
    assert out["reproduced"] and out["deterministic"]
    assert out["digest"] == out["recorded_digest"] == tags["artifact.digest"]
    assert out["metrics"] == out["recorded_metrics"]
    # The scratch worktree is gone.
    assert git(config.root, "worktree", "list").count("\n") == 0

    # Human output, and lineage shows the environment.
    assert main(["--config", str(config.path), "reproduce", f"{name}@1"]) == 0
    assert f"{name}@1: reproduced exactly" in capsys.readouterr().out
    assert main(["--config", str(config.path), "lineage", f"{name}@1"]) == 0
    shown = capsys.readouterr().out
    assert "env" in shown and tags["env.lock"] in shown and "cpu" in shown


@pytest.mark.slow
def test_another_lock_hash_is_an_environment_difference(
    project: tuple[Config, MlflowModelRegistry],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, registry = project
    name = f"{config.project}-intent"
    monkeypatch.setenv("PLATFORM_KIT_LOCK_HASH", "sha256:0123456789abcdef")
    trained(config, registry, name)
    assert registry.version(name, 1).tags["env.lock"] == "sha256:0123456789abcdef"
    monkeypatch.setenv("PLATFORM_KIT_LOCK_HASH", "sha256:fedcba9876543210")

    code, out = reproduce(config, f"{name}@1", capsys)
    assert code == 1 and not out["reproduced"]
    assert out["differs"] == ["environment"]
    assert out["differences"] == [
        {
            "aspect": "environment",
            "what": "env.lock: sha256:0123456789abcdef -> sha256:fedcba9876543210",
        }
    ]
    assert out["digest"] == out["recorded_digest"]  # the weights still match bit for bit


@pytest.mark.slow
def test_data_that_cannot_be_read_at_its_commit(
    project: tuple[Config, MlflowModelRegistry], capsys: pytest.CaptureFixture[str]
) -> None:
    config, registry = project
    name = f"{config.project}-intent"
    trained(config, registry, name)
    # As in a Dolt clone that lacks the commit (or a history rewritten since).
    missing = "v" * 32
    registry.client.set_model_version_tag(name, "1", "dolt.commit", missing)

    code, out = reproduce(config, f"{name}@1", capsys)
    assert code == 1 and out["differs"] == ["data"] and not out["retrained"]
    [difference] = out["differences"]
    assert difference["what"].startswith(f"cannot read the rows of {name} at Dolt commit vvvv")
    assert main(["--config", str(config.path), "reproduce", f"{name}@1"]) == 1
    assert "differs in data" in capsys.readouterr().out


@pytest.mark.slow
def test_a_command_trainer_without_determinism_compared_by_metrics(
    project: tuple[Config, MlflowModelRegistry], capsys: pytest.CaptureFixture[str]
) -> None:
    config, registry = project
    noisy, strict = f"{config.project}-noisy", f"{config.project}-strict"
    trained(config, registry, noisy, strict)
    assert registry.version(noisy, 1).tags["trainer.deterministic"] == "false"
    assert registry.version(noisy, 1).tags["trainer.tolerance"] == "0.05"
    assert "env.device" not in registry.version(noisy, 1).tags  # torch never ran

    code, out = reproduce(config, f"{noisy}@1", capsys)
    assert (code, out["summary"]) == (0, "reproduced exactly"), out
    assert not out["deterministic"] and out["tolerance"] == 0.05
    assert out["digest"] != out["recorded_digest"]  # random weights: only metrics are compared

    # Declaring no tolerance: any wobble of a metric is a difference in the weights.
    code, out = reproduce(config, f"{strict}@1", capsys)
    assert code == 1 and out["differs"] == ["weights"]
    assert [d["what"].split(":")[0] for d in out["differences"]] == ["metric accuracy"]


def test_reproduce_rejects_a_bad_ref(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "no-version"]) == 2
    assert "expected NAME@VERSION" in capsys.readouterr().err
