"""The workflows' wiring and the matrix they run: pure checks, no services.

The linters (actionlint, zizmor) run in tests/integration/test_github_lint.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from platform_kit.cli.github import parse_inputs
from platform_kit.errors import UsageError
from platform_kit.plan import (
    MAX_MATRIX_JOBS,
    Decision,
    Plan,
    Reason,
    Shard,
    github_output,
    shard_plan,
)

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SHA_PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def all_workflows() -> dict[str, dict[str, Any]]:
    return {p.name: load(p.name) for p in sorted(WORKFLOWS.glob("*.yml"))}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


# ---------------------------------------------------------------------------- the matrix


def plan_of(models: int) -> Plan:
    decisions = tuple(
        Decision(
            name=f"intent-c{i:04d}",
            train=True,
            reason=Reason.DATA_CHANGED,
            rows=50 + (i * 37) % 400,
        )
        for i in range(models)
    )
    return Plan(to_commit="a" * 32, decisions=decisions)


def parse_output(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_1000_models_fit_in_one_matrix_of_256_jobs() -> None:
    plan = plan_of(1000)
    shards = shard_plan(plan, MAX_MATRIX_JOBS)
    outputs = parse_output(github_output(shards))

    assert outputs["count"] == "256"
    assert len(outputs["matrix"].encode()) < 1_000_000  # GitHub's limit for a job output
    matrix = json.loads(outputs["matrix"])
    assert len(matrix["include"]) == 256
    parsed = [Shard.from_json(entry["shard"]) for entry in matrix["include"]]
    names = [name for shard in parsed for name in shard.models]
    assert sorted(names) == sorted(d.name for d in plan.decisions)  # each model exactly once
    assert {s.ref for s in parsed} == {plan.to_commit}  # every job trains the same commit
    assert [s.index for s in parsed] == list(range(256))
    assert {s.total for s in parsed} == {256}
    sizes = [len(s.models) for s in parsed]
    assert min(sizes) >= 2 and max(sizes) <= 6  # balanced: about 4 models a job


def test_fewer_models_than_jobs_give_one_job_each_and_nothing_to_train_gives_none() -> None:
    shards = shard_plan(plan_of(10), MAX_MATRIX_JOBS)
    assert len(shards) == 10 and all(len(s.models) == 1 for s in shards)
    assert parse_output(github_output(shard_plan(plan_of(0))))["count"] == "0"


# ---------------------------------------------------------------------------- the workflows


def test_train_workflow_plans_on_cpu_and_trains_the_shards_on_gpu() -> None:
    train = load("train.yml")
    assert set(train["on"]) == {"workflow_call"}
    jobs = train["jobs"]
    plan = jobs["plan"]
    assert "gpu" not in plan["runs-on"] and "cpu" in plan["runs-on"]
    assert plan["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    plan_step = next(s for s in steps(plan) if s.get("id") == "plan")
    assert "platform-kit plan" in plan_step["run"] and "--format github" in plan_step["run"]

    matrix_job = jobs["train"]
    assert matrix_job["runs-on"] == ["self-hosted", "linux", "gpu"]
    strategy = matrix_job["strategy"]
    assert strategy["fail-fast"] is False
    assert strategy["max-parallel"] == "${{ inputs.max_parallel }}"
    assert strategy["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    train_step = steps(matrix_job)[-1]
    assert train_step["env"]["SHARD"] == "${{ matrix.shard }}"
    assert 'platform-kit train --config "$CONFIG" --shard "$SHARD"' in train_step["run"]

    release = jobs["release"]
    assert release["uses"] == "./.github/workflows/release.yml"
    assert "needs.train.result == 'success'" in release["if"]
    assert "!inputs.skip_release" in release["if"]


def test_pipeline_has_the_three_triggers_and_passes_the_dispatch_inputs() -> None:
    pipeline = load("pipeline.yml")
    on = pipeline["on"]
    assert set(on["workflow_dispatch"]["inputs"]) == {
        "models",
        "force",
        "dolt_ref",
        "skip_release",
        "deploy_tag",
    }
    assert on["repository_dispatch"]["types"] == ["dolt-main-updated"]
    assert on["schedule"]
    watch = pipeline["jobs"]["watch"]
    assert "platform-kit github watch --once" in steps(watch)[-1]["run"]
    assert watch["permissions"] == {"contents": "write"}  # repository_dispatch needs it
    assert pipeline["jobs"]["train"]["uses"] == "./.github/workflows/train.yml"
    assert "client_payload.commit" in pipeline["run-name"]


def test_rollback_takes_an_image_tag_and_is_gated_by_production() -> None:
    caller = load("rollback-production.yml")
    assert caller["on"]["workflow_dispatch"]["inputs"]["image_tag"]["required"] is True
    job = caller["jobs"]["rollback"]
    assert job["uses"] == "./.github/workflows/rollback.yml"
    assert job["with"]["environment"] == "production"
    reusable = load("rollback.yml")
    assert reusable["jobs"]["rollback"]["environment"] == "${{ inputs.environment }}"
    assert '"$IMAGE_TAG"' in steps(reusable["jobs"]["rollback"])[-1]["run"]


def test_pipeline_deploys_through_production_forwards_and_back() -> None:
    jobs = load("pipeline.yml")["jobs"]
    deploy = jobs["deploy"]
    # One mechanism for both directions: rollback.yml in the production environment.
    assert deploy["uses"] == "./.github/workflows/rollback.yml"
    assert deploy["with"]["environment"] == "production"
    assert deploy["with"]["action"] == "deploy"
    assert deploy["with"]["image_tag"] == "${{ inputs.deploy_tag || needs.release.outputs.tag }}"
    assert deploy["needs"] == "release" and "!cancelled()" in deploy["if"]
    assert "!inputs.deploy_tag" in jobs["train"]["if"]  # back: train nothing
    assert "!inputs.deploy_tag" in jobs["release"]["if"]
    step = steps(load("rollback.yml")["jobs"]["rollback"])[-1]
    assert 'platform-kit release "$ACTION"' in step["run"]
    # Forwards: the pipeline calls release.yml itself, so its tag output reaches the deploy job
    # one level up (act, like GitHub, passes outputs of a directly called workflow).
    assert jobs["train"]["with"]["skip_release"] is True
    release = load("release.yml")
    assert release["on"]["workflow_call"]["outputs"]["tag"]["value"] == (
        "${{ jobs.release.outputs.tag }}"
    )
    assert release["jobs"]["release"]["outputs"]["tag"] == "${{ steps.build.outputs.tag }}"


def test_the_release_resolves_at_the_plans_commit_and_follows_partial_failures() -> None:
    train = load("train.yml")
    assert train["jobs"]["plan"]["outputs"]["commit"] == "${{ steps.plan.outputs.commit }}"
    assert train["on"]["workflow_call"]["outputs"]["commit"]["value"] == (
        "${{ jobs.plan.outputs.commit }}"
    )
    for release, commit in (
        (train["jobs"]["release"], "needs.plan.outputs.commit || inputs.dolt_ref"),
        (load("pipeline.yml")["jobs"]["release"], "needs.train.outputs.commit || inputs.dolt_ref"),
    ):
        assert release["uses"] == "./.github/workflows/release.yml"
        assert release["with"]["dolt_ref"].startswith("${{ " + commit)
        assert "result == 'failure'" in release["if"]
    step = steps(load("release.yml")["jobs"]["release"])[-1]
    assert step["env"]["DOLT_REF"] == "${{ inputs.dolt_ref }}" and "--ref" in step["run"]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_workflow_follows_the_rules(name: str) -> None:
    workflow = load(name)
    assert workflow.get("permissions") == {}, "least privilege: nothing at the top level"
    callable_only = set(workflow["on"]) == {"workflow_call"}
    if not callable_only:
        concurrency = workflow["concurrency"]
        assert concurrency["cancel-in-progress"] is False  # a running training is never killed
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{name}: job {job_name} sets no permissions"
        uses = job.get("uses")
        if uses is not None:
            assert uses.startswith("./.github/workflows/") or SHA_PINNED.match(uses)
            continue
        for step in steps(job):
            if "uses" in step:
                assert step["uses"].startswith("./") or SHA_PINNED.match(step["uses"]), step
                if step["uses"].startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False
            if "run" in step:
                # Inputs and payloads reach scripts through env:, never by interpolation.
                assert "${{" not in step["run"], f"{name}: {job_name}: {step['run']}"
                assert "platform-kit " in step["run"], f"{name}: a step that is not the kit"


PRODUCTION = "platform-kit-production"


def test_everything_that_changes_production_is_in_one_group_that_never_cancels_a_running_one() -> (
    None
):
    pipeline = load("pipeline.yml")["concurrency"]
    # Promotion and release (pipeline runs of every trigger but the schedule) and rollbacks share
    # one repository-wide group: no run id, no event name but the watcher's, no workflow name.
    assert pipeline["group"] == (
        "${{ github.event_name == 'schedule' && 'platform-kit-watch' || '" + PRODUCTION + "' }}"
    )
    assert load("rollback-production.yml")["concurrency"]["group"] == PRODUCTION
    for name, workflow in all_workflows().items():
        concurrency = workflow.get("concurrency")
        if concurrency is not None:
            assert concurrency["cancel-in-progress"] is False, name
        if set(workflow["on"]) == {"workflow_call"}:
            # A called workflow in its caller's group would wait for its caller forever.
            assert concurrency is None, name
            assert all("concurrency" not in job for job in workflow["jobs"].values()), name
    # Syncs write only sheets/* branches; they keep a group of their own.
    assert load("sync-sheets.yml")["concurrency"]["group"] != PRODUCTION


# Events a fork or an outsider can trigger: none may reach the self-hosted runners (the premise
# of the self-hosted-runner entry in .github/zizmor.yml).
UNTRUSTED_EVENTS = {
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "pull_request_review_comment",
    "issue_comment",
    "issues",
    "discussion",
    "discussion_comment",
    "fork",
    "watch",
    "workflow_run",
    "push",
}


def test_no_workflow_runs_on_an_event_that_outsiders_can_trigger() -> None:
    for name, workflow in all_workflows().items():
        on = workflow["on"]
        events = {on} if isinstance(on, str) else set(on)
        assert events <= {"workflow_dispatch", "repository_dispatch", "schedule", "workflow_call"}
        assert not events & UNTRUSTED_EVENTS, name


# ---------------------------------------------------------------------------- credentials

# The Dolt user each job opens Dolt as (infra/dolt-users.py), and the secret with its password.
DOLT_ROLES = {
    ("sync.yml", "sync"): ("kit_sync", "DOLT_SYNC_PASSWORD"),
    ("pipeline.yml", "watch"): ("kit_merge", "DOLT_MERGE_PASSWORD"),
    ("merge-data.yml", "merge"): ("kit_merge", "DOLT_MERGE_PASSWORD"),
    ("train.yml", "plan"): ("kit_read", "DOLT_READ_PASSWORD"),
    ("train.yml", "train"): ("kit_read", "DOLT_READ_PASSWORD"),
    ("train.yml", "train-selected"): ("kit_read", "DOLT_READ_PASSWORD"),
    ("release.yml", "release"): ("kit_read", "DOLT_READ_PASSWORD"),
    ("rollback.yml", "rollback"): ("kit_read", "DOLT_READ_PASSWORD"),
}
MLFLOW_SETTINGS = {
    "KIT_MLFLOW_TRACKING_URI": "${{ inputs.mlflow_tracking_uri }}",
    "KIT_MLFLOW_TRACKING_USERNAME": "${{ inputs.mlflow_tracking_username }}",
    "KIT_MLFLOW_TRACKING_PASSWORD": "${{ secrets.MLFLOW_TRACKING_PASSWORD }}",
    "KIT_MLFLOW_TRACKING_TOKEN": "${{ secrets.MLFLOW_TRACKING_TOKEN }}",
}
KIT_ENV = ROOT / ".github" / "kit-env.sh"


def mentions_secret(value: object) -> bool:
    return "secrets." in json.dumps(value)


def runner_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    """(workflow, job name, job) of every job that runs steps (not a call of a workflow)."""
    return [
        (name, job_name, job)
        for name, workflow in all_workflows().items()
        for job_name, job in workflow["jobs"].items()
        if "steps" in job
    ]


def test_credentials_reach_only_the_platform_kit_steps() -> None:
    for name, workflow in all_workflows().items():
        assert not mentions_secret(workflow.get("env", {})), name
        for job_name, job in workflow["jobs"].items():
            # A job's env reaches every step, install-kit's `pip install` and its build tools too.
            assert not mentions_secret(job.get("env", {})), f"{name}: {job_name}"
            for step in steps(job):
                if mentions_secret(step.get("env", {})) or mentions_secret(step.get("with", {})):
                    assert "platform-kit " in step.get("run", ""), f"{name}: {job_name}: {step}"
    action = yaml.safe_load((ROOT / ".github/actions/install-kit/action.yml").read_text())
    assert not mentions_secret(action)
    assert "secrets.DOLT_PASSWORD" not in "".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))


def test_each_job_opens_dolt_as_the_one_user_it_needs() -> None:
    seen = {}
    for name, job_name, job in runner_jobs():
        for step in steps(job):
            step_env = step.get("env", {})
            if "DOLT_PASSWORD" in step_env or "DOLT_USER" in step_env:
                user, secret = DOLT_ROLES[(name, job_name)]
                assert step_env["DOLT_USER"] == user, f"{name}: {job_name}"
                assert step_env["DOLT_PASSWORD"] == f"${{{{ secrets.{secret} }}}}"
                seen[(name, job_name)] = user
    assert seen == {key: user for key, (user, _) in DOLT_ROLES.items()}


def test_every_step_that_talks_to_mlflow_gets_the_same_settings_without_overriding_the_runner() -> (
    None
):
    for name, job_name, job in runner_jobs():
        for step in steps(job):
            step_env = step.get("env", {})
            # MLflow's own names are never set from an input: "" would hide the runner's value.
            assert not any(key.startswith("MLFLOW_") for key in step_env), f"{name}: {step}"
            if (name, job_name) in {("pipeline.yml", "watch"), ("merge-data.yml", "merge")}:
                assert not any(key.startswith("KIT_MLFLOW_") for key in step_env)
            elif "platform-kit " in step.get("run", ""):
                assert {k: step_env.get(k) for k in MLFLOW_SETTINGS} == MLFLOW_SETTINGS, name
                assert step["run"].startswith(". .github/kit-env.sh\n"), f"{name}: {job_name}"


def test_callers_hand_every_workflow_the_settings_it_declares() -> None:
    workflows = all_workflows()
    for name, workflow in workflows.items():
        for job_name, job in workflow["jobs"].items():
            uses = job.get("uses", "")
            if not uses.startswith("./.github/workflows/"):
                continue
            called = workflows[uses.rsplit("/", 1)[1]]["on"]["workflow_call"]
            declared = set(called.get("secrets") or {})
            passed = job.get("secrets") or {}
            assert set(passed) == declared, f"{name}: {job_name}"
            for secret, value in passed.items():
                assert value == f"${{{{ secrets.{secret} }}}}", f"{name}: {job_name}: {secret}"
            for setting in ("mlflow_tracking_uri", "mlflow_tracking_username"):
                assert setting in called["inputs"]
                assert setting in job["with"], f"{name}: {job_name} does not pass {setting}"


def kit_env(environ: dict[str, str]) -> dict[str, str]:
    """The environment after sourcing .github/kit-env.sh in bash."""
    script = f". {KIT_ENV} && env -0"
    result = subprocess.run(
        ["bash", "-c", script], env=environ, capture_output=True, check=True, timeout=30
    )
    pairs = (item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    return {key: value for key, value in pairs if "MLFLOW" in key}


def test_kit_env_exports_only_the_settings_that_were_given() -> None:
    runner = {"PATH": "/usr/bin:/bin", "MLFLOW_TRACKING_URI": "http://runner:5000"}
    unset = {f"KIT_MLFLOW_TRACKING_{k}": "" for k in ("URI", "USERNAME", "PASSWORD", "TOKEN")}
    assert kit_env({**runner, **unset}) == {"MLFLOW_TRACKING_URI": "http://runner:5000"}
    given = {
        **unset,
        "KIT_MLFLOW_TRACKING_URI": "http://repo:5000",
        "KIT_MLFLOW_TRACKING_USERNAME": "kit",
        "KIT_MLFLOW_TRACKING_PASSWORD": "s3cret pass",
    }
    assert kit_env({**runner, **given}) == {
        "MLFLOW_TRACKING_URI": "http://repo:5000",
        "MLFLOW_TRACKING_USERNAME": "kit",
        "MLFLOW_TRACKING_PASSWORD": "s3cret pass",
    }


# ---------------------------------------------------------------------------- small parts


def test_parse_inputs() -> None:
    assert parse_inputs(["models=a b", "force=true", "x="]) == {
        "models": "a b",
        "force": "true",
        "x": "",
    }
    with pytest.raises(UsageError, match="not K=V"):
        parse_inputs(["models"])
    with pytest.raises(UsageError, match="25 at most"):
        parse_inputs([f"k{i}=v" for i in range(26)])
