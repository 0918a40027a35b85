"""Dispatch and watch with the real PyGithub client against the local GitHub emulator, and the
watcher polling a real Dolt server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_kit.cli import main
from platform_kit.config import Config, load_config
from platform_kit.errors import GitHubError
from platform_kit.github import (
    DOLT_MAIN_UPDATED,
    GitHubClient,
    dispatch_workflow,
    notify_main_updated,
    watch,
)
from platform_kit.store.base import ChangeSet, Store, TableSchema
from platform_kit.store.dolt import DoltStore
from platform_kit.testing.github_emulator import GitHubEmulator
from tests.conftest import Services

TOKEN = "ghp_emulated_secret_token_123"
REPO = "octo/platform"
SCHEMA = TableSchema(columns={"id": "string", "text": "string"}, primary_key=("id",))


@pytest.fixture
def github() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(repository=REPO, token=TOKEN) as emulator:
        yield emulator


def client_for(emulator: GitHubEmulator, token: str = TOKEN) -> GitHubClient:
    return GitHubClient(
        REPO, token, emulator.api_url, first_delay=0.01, run_lookup_seconds=2, sleep=lambda s: None
    )


@pytest.fixture
def github_env(github: GitHubEmulator, monkeypatch: pytest.MonkeyPatch) -> GitHubEmulator:
    monkeypatch.setenv("GITHUB_API_URL", github.api_url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    return github


# ---------------------------------------------------------------------------- dispatch


def test_dispatch_prints_the_run_url(
    github_env: GitHubEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(
        [
            "github",
            "dispatch",
            "pipeline.yml",
            "--config",
            str(tmp_path / "none.yaml"),  # no project needed: GITHUB_REPOSITORY names the repo
            "--ref",
            "main",
            "--input",
            "models=intent-c1 intent-c2",
            "--input",
            "force=true",
        ]
    )
    out = capsys.readouterr()
    assert code == 0
    run = github_env.runs[-1]
    assert out.out.strip() == f"{github_env.root}/{REPO}/actions/runs/{run.id}"
    assert TOKEN not in out.out + out.err
    (body,) = github_env.workflow_dispatches()
    assert body["ref"] == "main"
    assert body["inputs"] == {"models": "intent-c1 intent-c2", "force": "true"}


def test_dispatch_on_a_server_without_run_details_finds_the_newest_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with GitHubEmulator(repository=REPO, token=TOKEN, legacy_dispatch=True) as emulator:
        result = dispatch_workflow(None, "pipeline.yml", "main", {}, client=client_for(emulator))
        bodies = emulator.workflow_dispatches()
    assert "return_run_details" in bodies[0] and "return_run_details" not in bodies[1]
    assert result.run_id == emulator.runs[-1].id
    assert result.run_url == f"{emulator.root}/{REPO}/actions/runs/{result.run_id}"


def test_dispatch_json_output(
    github_env: GitHubEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["github", "dispatch", "train.yml", "--json", "--config", "/nonexistent.yaml"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workflow"] == "train.yml" and data["run_id"] == github_env.runs[-1].id


def test_bad_token_and_unknown_workflow_are_clear_errors(
    github_env: GitHubEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(GitHubError, match=r"not-a-workflow\.txt"):
        client_for(github_env).dispatch_workflow("not-a-workflow.txt", "main")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong_token_456")
    assert main(["github", "dispatch", "pipeline.yml", "--config", "/nonexistent.yaml"]) == 1
    err = capsys.readouterr().err
    assert "401 Bad credentials" in err and "ghp_wrong_token_456" not in err
    monkeypatch.delenv("GITHUB_TOKEN")
    assert main(["github", "dispatch", "pipeline.yml", "--config", "/nonexistent.yaml"]) == 1
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err


def test_transient_errors_are_retried_but_a_dispatch_post_is_not(github: GitHubEmulator) -> None:
    client = client_for(github)
    github.fail_next(502, times=2, method="POST", path_contains="/dispatches")
    client.repository_dispatch(DOLT_MAIN_UPDATED, {"commit": "c1"})
    assert len(github.repository_dispatches()) == 1  # third try went through
    github.fail_next(502, method="POST", path_contains="/actions/workflows/")
    with pytest.raises(GitHubError, match="502"):
        client.dispatch_workflow("pipeline.yml", "main")  # might have started a run: not retried
    assert github.runs == []


# ---------------------------------------------------------------------------- notify and watch


def project(tmp_path: Path, database: str) -> Config:
    (tmp_path / "platform.yaml").write_text(
        f"project: watch-test\ndolt: {{database: {database}}}\ngithub: {{repository: {REPO}}}\n"
    )
    return load_config(tmp_path / "platform.yaml")


@pytest.fixture
def dolt_project(services: Services, tmp_path: Path) -> tuple[Config, Store]:
    database = f"watch_{uuid.uuid4().hex[:10]}"
    store = DoltStore(services.dolt.host, services.dolt.port, "root", "", database)
    store.create_database()
    return project(tmp_path, database), store


def commit(store: Store, key: str) -> str:
    head = store.commit_changes(
        "main", [ChangeSet("examples", SCHEMA, inserts=[{"id": key, "text": key}])], f"add {key}"
    )
    assert head is not None
    return head


def test_notify_main_updated_sends_the_commit_database_and_branch(
    github: GitHubEmulator, tmp_path: Path
) -> None:
    config = project(tmp_path, "training")
    payload = notify_main_updated(config, "abc123", client=client_for(github))
    (body,) = github.repository_dispatches()
    assert body == {"event_type": "dolt-main-updated", "client_payload": payload}
    assert payload["commit"] == "abc123"
    assert payload["database"] == "training" and payload["branch"] == "main"


def test_watch_sends_one_dispatch_per_new_head_and_survives_a_restart(
    github: GitHubEmulator, dolt_project: tuple[Config, Store]
) -> None:
    config, store = dolt_project

    def poll() -> list[str]:
        # A fresh client each time, as a restarted process would have.
        events = watch(config, store, once=True, client=client_for(github))
        return [e.action for e in events]

    first = store.resolve("main")
    assert poll() == ["dispatched"]
    assert poll() == ["unchanged"]
    assert poll() == ["unchanged"]
    second = commit(store, "a")
    assert poll() == ["dispatched"]
    commit(store, "b")
    third = commit(store, "c")  # two merges between polls: the newest head holds both
    assert poll() == ["dispatched"]
    assert poll() == ["unchanged"]
    sent = [body["client_payload"]["commit"] for body in github.repository_dispatches()]
    assert sent == [first, second, third]
    state = json.loads((config.state_dir / "github-watch.json").read_text())
    assert [entry["commit"] for entry in state.values()] == [third]


def test_a_failed_dispatch_is_sent_again_at_the_next_poll(
    github: GitHubEmulator, dolt_project: tuple[Config, Store], tmp_path: Path
) -> None:
    config, store = dolt_project
    state = tmp_path / "elsewhere" / "watch.json"
    head = commit(store, "a")
    github.fail_next(403, message="Resource not accessible by integration", method="POST")
    with pytest.raises(GitHubError, match="403 Resource not accessible"):
        watch(config, store, once=True, client=client_for(github), state_path=state)
    assert not state.exists()  # nothing recorded: the head is still to be announced

    # The long-running form reports a failed poll and tries again at the next one.
    github.fail_next(503, times=5, method="POST")  # one poll's tries
    events = watch(
        config,
        store,
        interval=0.01,
        max_polls=3,
        client=client_for(github),
        state_path=state,
        sleep=lambda s: None,
    )
    assert [e.action for e in events] == ["failed", "dispatched", "unchanged"]
    assert "503" in (events[0].error or "")
    assert [b["client_payload"]["commit"] for b in github.repository_dispatches()] == [head]


def test_watch_cli_once(
    github_env: GitHubEmulator,
    dolt_project: tuple[Config, Store],
    capsys: pytest.CaptureFixture[str],
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, store = dolt_project
    # The CLI opens the store from the config: point it at the test server.
    server = f"mysql://root@{services.dolt.host}:{services.dolt.port}"
    config.path.write_text(
        config.path.read_text().replace("dolt: {", f"dolt: {{server: '{server}', ")
    )
    args = ["github", "watch", "--once", "--json", "--config", str(config.path)]
    assert main(args) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["action"] == "dispatched" and event["head"] == store.resolve("main")
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "unchanged"
    assert len(github_env.repository_dispatches()) == 1


# ---------------------------------------------------------------------------- DoltHub hooks


def test_dolthub_hook_forwards_a_merge_once_and_ignores_other_events(
    github: GitHubEmulator, dolt_project: tuple[Config, Store], tmp_path: Path
) -> None:
    import threading
    import urllib.error
    import urllib.request

    from platform_kit.dolthub_webhook import make_server, receiver_for

    config, store = dolt_project
    receiver = receiver_for(config, store, client=client_for(github))
    server = make_server(receiver, "127.0.0.1", 0, "/hooks/dolthub")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/dolthub"

    def post(payload: object) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        head = commit(store, "a")
        merged = {"event_name": "pull_request", "state": "merged", "head": "forged"}
        status, answer = post(merged)
        assert status == 200 and answer["action"] == "dispatched"
        assert answer["head"] == head  # the store's head, never the payload's
        assert post(merged)[1]["action"] == "unchanged"  # a redelivery sends nothing
        # The scheduled watcher shares the state: it does not announce the head again.
        assert [e.action for e in watch(config, store, once=True, client=client_for(github))] == [
            "unchanged"
        ]
        assert post({"event_name": "pull_request", "state": "open"})[1]["action"] == "ignored"
        assert post({"event_name": "push", "ref": "sheets/examples"})[1]["action"] == "ignored"
        second = commit(store, "b")
        status, answer = post({"event_name": "push", "ref": "main", "head": second})
        assert status == 200 and answer["action"] == "dispatched"
        github.fail_next(401, method="POST")
        commit(store, "c")
        status, answer = post({"event_name": "push", "ref": "main"})
        assert status == 502 and answer["action"] == "failed"
        assert post("not an object")[0] == 400
        sent = [b["client_payload"]["commit"] for b in github.repository_dispatches()]
        assert sent == [head, second]
    finally:
        server.shutdown()
        server.server_close()
