"""Data pull requests on a real Dolt remote, end to end: the init sample project's clone pushes a
data branch (``sync --push``), a reviewer merges it on the remote's side (SQL on the remote as its
admin), the DoltHub webhook receiver hears of it and sends ``dolt-main-updated`` with the new head
to the GitHub emulator, and a runner's clone plans and trains exactly the changed model at that
commit. Also: ``run`` with a remote whose main moves during the run, and a rejected push.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from platform_kit import endpoints
from platform_kit import services as svc
from platform_kit.cli import main
from platform_kit.config import Config, load_config
from platform_kit.dolthub_webhook import make_server, receiver_for
from platform_kit.github import GitHubClient
from platform_kit.init import init_project
from platform_kit.pipeline import run_pipeline
from platform_kit.project import Project
from platform_kit.store.dolt import DoltStore
from platform_kit.testing.github_emulator import GitHubEmulator
from tests.conftest import require
from tests.remote import (
    KIT_PASSWORD,
    RemoteServer,
    remote_password,
    start_clone_server,
    start_remote,
    stop,
)

TOKEN = "ghp_remote_pipeline_token_77"
REPO = "octo/data"


@dataclass
class World:
    remote: RemoteServer
    database: str  # on the remote
    analyst: Config  # the clone the analyst's syncs and runs use (local Dolt + MLflow)
    runner: Config  # another clone on the same servers, as a CI runner would hold


def write(root: Path, database: str, url: str, extra: str = "") -> Config:
    text = (root / "platform.yaml").read_text()
    # One project name for every clone: the models (and their fingerprints) are the same.
    text = re.sub(r"(?m)^project: .*$", "project: remote-demo", text)
    text = re.sub(r"(?m)^  experiment: .*$", "  experiment: remote-demo", text)
    text = text.replace("  database: training\n", f"  database: {database}\n")
    text = text.replace("  remote: null\n", f'  remote: "{url}"\n')
    (root / "platform.yaml").write_text(text + extra)
    return load_config(root / "platform.yaml")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    try:
        remote = start_remote(tmp_path_factory.mktemp("remote"))
    except Exception as exc:
        require("dolt sql-server with --remotesapi-port", str(exc))
    database = f"data_{uuid.uuid4().hex[:8]}"
    remote.create_database(database)
    analyst_root = tmp_path_factory.mktemp("analyst")
    init_project(analyst_root)
    analyst = write(analyst_root, "training", remote.url(database))
    try:
        start_clone_server(analyst, mlflow=True)
    except Exception as exc:
        require("local dolt sql-server / mlflow server", str(exc))
    dolt = endpoints.dolt_endpoint(analyst)
    runner_root = tmp_path_factory.mktemp("runner")
    init_project(runner_root)
    runner = write(
        runner_root,
        "runner",
        remote.url(database),
        f"github: {{repository: {REPO}}}\n",
    )
    text = (runner_root / "platform.yaml").read_text()
    text = text.replace("  server: null\n", f"  server: mysql://root@{dolt.host}:{dolt.port}\n")
    text = text.replace(
        "  tracking_uri: null\n", f"  tracking_uri: {endpoints.mlflow_uri(analyst)}\n"
    )
    (runner_root / "platform.yaml").write_text(text)
    runner = load_config(runner_root / "platform.yaml")
    yield World(remote, database, analyst, runner)
    svc.services_down(analyst)
    stop(remote.pid)


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def edit_examples(config: Config, customer: str, text: str) -> None:
    path = config.root / "sheets" / "examples.csv"
    lines = path.read_text().splitlines()
    new_id = f"{customer}-{uuid.uuid4().hex[:6]}"
    lines.append(f"{new_id},{customer},{text},lost_card")
    path.write_text("\n".join(lines) + "\n")


def test_pull_request_merged_on_the_remote_trains_exactly_the_changed_model(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, db, analyst = world.remote, world.database, world.analyst
    # 1. The first run clones the (empty) remote, syncs, merges, pushes main and trains both.
    first = run_pipeline(Project(analyst), release=False)
    assert sorted(first.trained) == ["intent-acme-bank", "intent-zephyr-air"]
    assert remote.head(db) == first.main_commit  # the remote has exactly what was trained

    # 2. An analyst's edit becomes a data branch on the remote, with where to review it.
    edit_examples(analyst, "acme-bank", "my card is gone and i need a new one")
    code, pushed = cli_json(capsys, "sync", "--push", "--config", str(analyst.path))
    assert code == 0
    (branch,) = pushed["pushed"]
    assert branch["branch"] == "sheets/examples" and branch["pull_request"] is None
    assert remote.head(db, "sheets/examples") == branch["commit"]
    assert remote.head(db) == first.main_commit  # main waits for the review

    # 3. A reviewer merges the pull request on the remote's side.
    remote.sql(db, "CALL DOLT_MERGE('sheets/examples')")
    merged = remote.head(db)
    assert merged != first.main_commit

    # 4. The remote's hook reaches the receiver, which announces the remote's new head.
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    with GitHubEmulator(repository=REPO, token=TOKEN) as github:
        client = GitHubClient(REPO, TOKEN, github.api_url, first_delay=0.01, sleep=lambda s: None)
        hook_project = Project(world.runner)
        receiver = receiver_for(world.runner, hook_project.store, client=client)
        server = make_server(receiver, "127.0.0.1", 0, "/hooks/dolt")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            body = json.dumps({"event_name": "pull_request", "state": "merged"}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.server_address[1]}/hooks/dolt", data=body
            )
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = json.loads(response.read())
        finally:
            server.shutdown()
            server.server_close()
        (dispatch,) = github.repository_dispatches()
    assert answer["action"] == "dispatched" and answer["head"] == merged
    assert dispatch["event_type"] == "dolt-main-updated"
    commit = dispatch["client_payload"]["commit"]
    assert commit == merged

    # 5. The run it starts plans and trains at that exact commit: only the edited customer.
    code, plan = cli_json(capsys, "plan", "--to", commit, "--config", str(world.runner.path))
    assert code == 0 and plan["to_commit"] == commit
    assert plan["train"] == ["intent-acme-bank"]
    (shard,) = plan["shards"]  # as the workflow's matrix hands it to a job
    code, report = cli_json(capsys, "train", "--shard", shard, "--config", str(world.runner.path))
    assert code == 0
    assert report["dolt_commit"] == commit and report["trained"] == 1
    assert [m["name"] for m in report["models"] if m["status"] == "trained"] == ["intent-acme-bank"]
    # The analyst's clone catches up with the merge too.
    code, pulled = cli_json(capsys, "data", "pull", "--config", str(analyst.path))
    assert code == 0 and pulled["after"] == merged and pulled["changed"]
    # Its plan with no --to reads the remote's main at that commit: nothing left to train.
    code, plan = cli_json(capsys, "plan", "--config", str(analyst.path))
    assert code == 0 and plan["to_commit"] == merged and plan["train"] == []


def test_run_with_a_remote_main_that_moves_during_the_run(world: World) -> None:
    remote, db, analyst = world.remote, world.database, world.analyst
    run_pipeline(Project(analyst), release=False)  # in step with the remote
    edit_examples(analyst, "zephyr-air", "i lost my card at the airport")
    moved: list[str] = []

    def reviewer_merges_meanwhile(stage: str, line: str) -> None:
        # Another pull request lands on the remote while this run merges, then while it trains.
        if (stage == "merge" and not moved) or (stage == "plan" and len(moved) == 1):
            key = f"acme-bank-{uuid.uuid4().hex[:6]}"
            remote.sql(
                db,
                "INSERT INTO examples VALUES "
                f"('{key}', 'acme-bank', 'please freeze my card right now', 'lost_card')",
                f"CALL DOLT_COMMIT('-am', 'reviewer merge {len(moved)}')",
            )
            moved.append(remote.head(db))

    report = run_pipeline(Project(analyst), release=False, say=reviewer_merges_meanwhile)
    assert len(moved) == 2
    # The first move was merged in before the push; the run trained exactly what it pushed:
    # the analyst's customer and the one the first remote change touched.
    assert sorted(report.trained) == ["intent-acme-bank", "intent-zephyr-air"]
    # The second move (during training) is not lost: it is the remote's head, a child of the
    # trained commit, and the next pull brings it in.
    assert remote.head(db) == moved[1] != report.main_commit
    store = Project(analyst).store
    assert store.pull("main") == moved[1]
    assert report.main_commit in {c.hash for c in store.log("main", limit=5)}


def test_sync_push_builds_on_a_reviewers_fix_and_refuses_a_diverged_branch(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    remote, db, analyst = world.remote, world.database, world.analyst
    edit_examples(analyst, "zephyr-air", "where is my replacement card")
    code, _ = cli_json(capsys, "sync", "--push", "--config", str(analyst.path))
    assert code == 0

    def reviewer_fixes_the_branch() -> str:
        remote.sql(
            f"{db}/sheets/examples",
            "UPDATE examples SET text = CONCAT(text, '!') WHERE example_id = 'acme-bank-00001'",
            "CALL DOLT_COMMIT('-am', 'a reviewer fixes a row on the branch')",
        )
        return remote.head(db, "sheets/examples")

    # A commit on the remote's branch that this clone lacks: the sync builds on it.
    fix = reviewer_fixes_the_branch()
    edit_examples(analyst, "zephyr-air", "my card was swallowed by the atm")
    code, pushed = cli_json(capsys, "sync", "--push", "--config", str(analyst.path))
    assert code == 0
    store = Project(analyst).store
    assert fix in {c.hash for c in store.log("sheets/examples", limit=5)}
    assert remote.head(db, "sheets/examples") == pushed["pushed"][0]["commit"]

    # Both sides have commits the other lacks: the push is refused, and nothing is lost.
    edit_examples(analyst, "zephyr-air", "the atm kept my card again")
    assert main(["sync", "--config", str(analyst.path)]) == 0  # a local commit, not pushed
    theirs = reviewer_fixes_the_branch()
    ours = store.branches()["sheets/examples"]
    capsys.readouterr()
    code = main(["sync", "--push", "--config", str(analyst.path)])
    err = capsys.readouterr().err
    assert code != 0
    assert "not a fast-forward" in err and "nothing was changed" in err
    assert remote.head(db, "sheets/examples") == theirs  # the remote kept its commit
    assert store.branches()["sheets/examples"] == ours  # and the sync's commit is still here


def test_sync_push_needs_a_remote_and_a_clone_server_needs_the_password(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "plain"
    init_project(root)
    capsys.readouterr()
    assert main(["sync", "--push", "--config", str(root / "platform.yaml")]) == 2
    assert "dolt.remote is not set" in capsys.readouterr().err
    # A local server started without DOLT_REMOTE_PASSWORD: the error says how to fix it.
    config = write(root, "training", world.remote.url(world.database))
    start_clone_server(config, password=None)
    try:
        with remote_password(KIT_PASSWORD):  # set for the kit, but not in the running server
            capsys.readouterr()
            code = main(["data", "pull", "--config", str(config.path)])
        err = capsys.readouterr().err
        assert code != 0 and "no DOLT_REMOTE_PASSWORD in its environment" in err
        assert "services down" in err and KIT_PASSWORD not in err
    finally:
        svc.services_down(config)


def test_an_unreachable_remote_is_one_line_after_retries(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "offline"
    init_project(root)
    dead = f"http://kit@127.0.0.1:{svc.free_port()}/nowhere"
    config = write(root, "offline", dead)
    dolt = endpoints.dolt_endpoint(world.analyst)  # the clone server, with the password
    text = config.path.read_text().replace(
        "  server: null\n", f"  server: mysql://root@{dolt.host}:{dolt.port}\n"
    )
    config.path.write_text(text)
    capsys.readouterr()
    code = main(["data", "pull", "--config", str(config.path)])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert err.count("\n") == 0 and "unreachable" in err and "tried 3 times" in err
    assert "nothing was changed" in err
    probe = DoltStore(dolt.host, dolt.port, "root", "", "offline")
    assert not probe._database_exists("offline")  # no database was made
