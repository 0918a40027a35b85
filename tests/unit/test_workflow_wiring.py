"""The workflows run under act with secrets and variables passed as repository settings pass them,
and each step gets exactly the credentials it should.

This checks the wiring of .github/ (which job opens Dolt as which user, which step sees which
secret, that an unset setting leaves the runner's value alone, that the plan's matrix reaches the
train jobs), not the kit: ``platform-kit`` and the runner virtualenv's ``python`` are replaced by a
recorder that writes each call's arguments and credentials to a file. The end-to-end test runs the
same workflows with the real kit against real servers.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
CACHE_BIN = (
    Path(os.environ.get("PLATFORM_KIT_CACHE") or Path.home() / ".cache/platform-kit") / "bin"
)

# Repository settings, as `act --secret/--var` passes them (each secret value distinct).
SECRETS = {
    "DOLT_READ_PASSWORD": "read-pw-0001",
    "DOLT_MERGE_PASSWORD": "merge-pw-0002",
    "DOLT_SYNC_PASSWORD": "sync-pw-0003",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-pw-0004",
    # MLFLOW_TRACKING_TOKEN is not set: the runner's own token must stay in place.
}
VARIABLES = {"MLFLOW_TRACKING_URI": "http://mlflow.example:5000"}
# The runner's own environment (its .env); the repository leaves MLFLOW_TRACKING_USERNAME unset.
RUNNER = {"MLFLOW_TRACKING_USERNAME": "runner-user", "MLFLOW_TRACKING_TOKEN": "runner-token"}

RECORDER = """\
import json, os, sys
what, args = sys.argv[1], sys.argv[2:]
if args == ["--version"]:
    print("platform-kit (recorder)")
    sys.exit(0)
wanted = ("DOLT_", "MLFLOW_", "KIT_", "GITHUB_TOKEN")
env = {k: v for k, v in os.environ.items() if k.startswith(wanted)}
secrets = json.loads(os.environ.pop("WIRING_SECRETS"))
seen = sorted(name for name, value in secrets.items() if value in json.dumps(dict(os.environ)))
call = {"what": what, "job": os.environ.get("GITHUB_JOB"), "args": args, "env": env, "seen": seen}
with open(os.environ["WIRING_RECORD"], "a") as fh:
    fh.write(json.dumps(call) + "\\n")
if what == "kit" and args[:1] == ["plan"]:
    shards = [{"shard": json.dumps({"models": [f"m{i}"]}), "name": f"m{i}"} for i in (1, 2, 3)]
    with open(os.environ["GITHUB_OUTPUT"], "a") as fh:
        fh.write("matrix=" + json.dumps({"include": shards}) + "\\ncount=3\\n")
"""


def act_binary() -> str:
    candidate = CACHE_BIN / "act"
    found = str(candidate) if candidate.is_file() else shutil.which("act")
    if found is None:
        require("act", "not installed (bash infra/install-act.sh)")
    assert found is not None
    return found


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    """A runner virtualenv whose python and platform-kit record their calls."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "record.py").write_text(RECORDER)
    for name, what in (("python", "install"), ("platform-kit", "kit")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec python3 "$(dirname "$0")/record.py" {what} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return tmp_path / "venv"


def act(
    recorder: Path, tmp_path: Path, event: str, workflow: str, *extra: str
) -> list[dict[str, Any]]:
    """Run one workflow with act on this host; the recorded calls."""
    record = tmp_path / f"{workflow}.{event}.jsonl"
    command = [
        act_binary(),
        event,
        "-W",
        f".github/workflows/{workflow}",
        "-P",
        "self-hosted=-self-hosted",
        "--pull=false",
        "--env",
        f"PLATFORM_KIT_VENV={recorder}",
        "--env",
        f"WIRING_RECORD={record}",
        "--env",
        f"WIRING_SECRETS={json.dumps(SECRETS)}",
        *(arg for name, value in SECRETS.items() for arg in ("--secret", f"{name}={value}")),
        *(arg for name, value in VARIABLES.items() for arg in ("--var", f"{name}={value}")),
        *extra,
    ]
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DOLT_"))},
        **RUNNER,
        "HOME": str(tmp_path / "home"),  # act's caches and settings stay in the test
        "PATH": f"{recorder / 'bin'}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for value in SECRETS.values():
        assert value not in result.stdout + result.stderr  # act masks secrets as GitHub does
    return [json.loads(line) for line in record.read_text().splitlines()]


def kit_calls(calls: list[dict[str, Any]], command: str) -> list[dict[str, Any]]:
    return [c for c in calls if c["what"] == "kit" and c["args"][0] == command]


def expect_read_only_kit(call: dict[str, Any]) -> None:
    env = call["env"]
    assert env["DOLT_USER"] == "kit_read" and env["DOLT_PASSWORD"] == SECRETS["DOLT_READ_PASSWORD"]
    assert call["seen"] == ["DOLT_READ_PASSWORD", "MLFLOW_TRACKING_PASSWORD"]
    expect_mlflow(env)


def expect_mlflow(env: dict[str, str]) -> None:
    assert {k: v for k, v in env.items() if k.startswith(("MLFLOW_", "KIT_"))} == {
        "MLFLOW_TRACKING_URI": VARIABLES["MLFLOW_TRACKING_URI"],  # the repository variable
        "MLFLOW_TRACKING_USERNAME": RUNNER["MLFLOW_TRACKING_USERNAME"],  # unset: the runner's
        "MLFLOW_TRACKING_PASSWORD": SECRETS["MLFLOW_TRACKING_PASSWORD"],
        "MLFLOW_TRACKING_TOKEN": RUNNER["MLFLOW_TRACKING_TOKEN"],  # unset secret: the runner's
    }


def expect_installs_without_secrets(calls: list[dict[str, Any]], jobs: int) -> None:
    installs = [c for c in calls if c["what"] == "install"]
    assert len(installs) == jobs
    assert all(c["seen"] == [] and "DOLT_PASSWORD" not in c["env"] for c in installs)


def test_pipeline_dispatch_plans_trains_the_matrix_and_releases_as_kit_read(
    recorder: Path, tmp_path: Path
) -> None:
    calls = act(recorder, tmp_path, "workflow_dispatch", "pipeline.yml")
    (plan,) = kit_calls(calls, "plan")
    trains = kit_calls(calls, "train")
    (release,) = kit_calls(calls, "release")
    shards = [json.loads(c["args"][c["args"].index("--shard") + 1]) for c in trains]
    assert sorted(shard["models"][0] for shard in shards) == ["m1", "m2", "m3"]
    assert release["args"][:2] == ["release", "build"] and "--push" in release["args"]
    for call in (plan, *trains, release):
        expect_read_only_kit(call)
    expect_installs_without_secrets(calls, jobs=5)


def test_the_scheduled_watcher_uses_kit_merge_and_no_mlflow_credentials(
    recorder: Path, tmp_path: Path
) -> None:
    calls = act(recorder, tmp_path, "schedule", "pipeline.yml")
    (watch,) = kit_calls(calls, "github")
    assert watch["args"][:3] == ["github", "watch", "--once"]
    assert watch["env"]["DOLT_USER"] == "kit_merge"
    assert watch["env"]["DOLT_PASSWORD"] == SECRETS["DOLT_MERGE_PASSWORD"]
    assert watch["seen"] == ["DOLT_MERGE_PASSWORD"]
    assert "GITHUB_TOKEN" in watch["env"]
    expect_installs_without_secrets(calls, jobs=1)


def test_sync_uses_kit_sync(recorder: Path, tmp_path: Path) -> None:
    calls = act(recorder, tmp_path, "workflow_dispatch", "sync-sheets.yml", "--input", "sheets=a,b")
    (sync,) = kit_calls(calls, "sync")
    assert sync["args"] == ["sync", "--config", "platform.yaml", "--sheet", "a", "--sheet", "b"]
    assert sync["env"]["DOLT_USER"] == "kit_sync"
    assert sync["env"]["DOLT_PASSWORD"] == SECRETS["DOLT_SYNC_PASSWORD"]
    assert sync["seen"] == ["DOLT_SYNC_PASSWORD", "MLFLOW_TRACKING_PASSWORD"]
    expect_mlflow(sync["env"])
    expect_installs_without_secrets(calls, jobs=1)


def test_rollback_uses_kit_read(recorder: Path, tmp_path: Path) -> None:
    calls = act(
        recorder,
        tmp_path,
        "workflow_dispatch",
        "rollback-production.yml",
        "--input",
        "image_tag=0123abcd",
    )
    (rollback,) = kit_calls(calls, "release")
    assert rollback["args"][:2] == ["release", "rollback"] and rollback["args"][-1] == "0123abcd"
    expect_read_only_kit(rollback)
    expect_installs_without_secrets(calls, jobs=1)
