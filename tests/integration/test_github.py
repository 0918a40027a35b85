"""Dispatch and watch with the real PyGithub client against the local GitHub emulator, and the
watcher polling a real Dolt server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def project(
    tmp_path: Path, database: str, server: str | None = None, mlflow: str | None = None
) -> Config:
    """A project on ``database``; with ``server``, the CLI opens that Dolt server itself."""
    dolt = f"{{database: {database}" + (f", server: '{server}'" if server else "") + "}"
    text = f"project: watch-test\ndolt: {dolt}\ngithub: {{repository: {REPO}}}\n"
    if mlflow:
        text += f"mlflow: {{tracking_uri: '{mlflow}'}}\n"
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "platform.yaml").write_text(text)
    return load_config(tmp_path / "platform.yaml")


@pytest.fixture
def database(services: Services) -> str:
    name = f"watch_{uuid.uuid4().hex[:10]}"
    DoltStore(services.dolt.host, services.dolt.port, "root", "", name).create_database()
    return name


@pytest.fixture
def dolt_project(services: Services, database: str, tmp_path: Path) -> tuple[Config, Store]:
    store = DoltStore(services.dolt.host, services.dolt.port, "root", "", database)
    return project(tmp_path, database), store


def server_url(services: Services) -> str:
    return f"mysql://root@{services.dolt.host}:{services.dolt.port}"


def commit(store: Store, key: str, branch: str = "main") -> str:
    head = store.commit_changes(
        branch, [ChangeSet("examples", SCHEMA, inserts=[{"id": key, "text": key}])], f"add {key}"
    )
    assert head is not None
    return head


def sent(github: GitHubEmulator) -> list[str]:
    return [body["client_payload"]["commit"] for body in github.repository_dispatches()]


def test_notify_main_updated_sends_the_commit_database_and_branch_once(
    github: GitHubEmulator, dolt_project: tuple[Config, Store]
) -> None:
    config, store = dolt_project
    payload = notify_main_updated(config, store, "abc123", client=client_for(github))
    assert payload is not None
    (body,) = github.repository_dispatches()
    assert body == {"event_type": "dolt-main-updated", "client_payload": payload}
    assert payload["commit"] == "abc123"
    assert payload["database"] == config.dolt.database and payload["branch"] == "main"
    # A second announcement of the same commit (another merge, a retry) sends nothing, also
    # when the repository is spelled differently (GitHub's names are case-insensitive).
    assert notify_main_updated(config, store, "abc123", client=client_for(github)) is None
    shouted = GitHubClient(REPO.upper(), TOKEN, github.api_url, sleep=lambda s: None)
    assert notify_main_updated(config, store, "abc123", client=shouted) is None
    assert len(github.repository_dispatches()) == 1


def test_watch_sends_one_dispatch_per_new_head_and_survives_a_restart(
    github: GitHubEmulator, dolt_project: tuple[Config, Store]
) -> None:
    config, store = dolt_project

    def poll() -> list[str]:
        # A fresh client and watcher each time, as a restarted process would have.
        events = watch(config, store, once=True, client=client_for(github))
        return [e.action for e in events]

    first = store.resolve("main")
    assert poll() == ["dispatched"]
    assert poll() == ["announced-elsewhere"]  # the claim outlives the process
    second = commit(store, "a")
    assert poll() == ["dispatched"]
    commit(store, "b")
    third = commit(store, "c")  # two merges between polls: the newest head holds both
    assert poll() == ["dispatched"]
    # One long-running watcher remembers the head it saw and does not claim it again.
    events = watch(config, store, max_polls=2, client=client_for(github), sleep=lambda s: None)
    assert [e.action for e in events] == ["announced-elsewhere", "unchanged"]
    assert sent(github) == [first, second, third]


def test_a_failed_dispatch_is_sent_again_by_the_watcher_that_claimed_it(
    github: GitHubEmulator, dolt_project: tuple[Config, Store]
) -> None:
    config, store = dolt_project
    head = commit(store, "a")
    # The long-running form reports a failed poll and tries again at the next one.
    github.fail_next(503, times=5, method="POST")  # one poll's tries
    events = watch(
        config,
        store,
        interval=0.01,
        max_polls=3,
        client=client_for(github),
        sleep=lambda s: None,
    )
    assert [e.action for e in events] == ["failed", "dispatched", "unchanged"]
    assert "503" in (events[0].error or "")
    assert sent(github) == [head]

    # A one-shot watcher that loses its dispatch says how to start the run by hand: the head is
    # claimed, so no other watcher sends it.
    second = commit(store, "b")
    github.fail_next(403, message="Resource not accessible by integration", method="POST")
    with pytest.raises(GitHubError, match="403 Resource not accessible") as failure:
        watch(config, store, once=True, client=client_for(github))
    assert "platform-kit github dispatch pipeline.yml" in (failure.value.hint or "")
    assert [e.action for e in watch(config, store, once=True, client=client_for(github))] == [
        "announced-elsewhere"
    ]
    assert second not in sent(github)


def test_watch_cli_once(
    github_env: GitHubEmulator,
    dolt_project: tuple[Config, Store],
    capsys: pytest.CaptureFixture[str],
    services: Services,
    tmp_path: Path,
) -> None:
    config, store = dolt_project
    # The CLI opens the store from the config: point it at the test server.
    config = project(tmp_path / "cli", config.dolt.database, server_url(services))
    args = ["github", "watch", "--once", "--json", "--config", str(config.path)]
    assert main(args) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["action"] == "dispatched" and event["head"] == store.resolve("main")
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "announced-elsewhere"
    assert len(github_env.repository_dispatches()) == 1


def watcher_processes(configs: list[Config], github: GitHubEmulator) -> list[str]:
    """Start ``github watch --once`` in one process per workspace at the same moment; their
    actions."""
    environ = {
        **os.environ,
        "GITHUB_API_URL": github.api_url,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPO,
    }
    kit = "import sys; from platform_kit.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", kit, "github", "watch", "--once", "--json"]
    processes = [
        subprocess.Popen(
            [*command, "--config", str(config.path)],
            cwd=config.path.parent,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for config in configs
    ]
    actions = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        actions.append(json.loads(out)["action"])
    return sorted(actions)


def test_two_watchers_on_two_runners_send_one_dispatch_per_head(
    github: GitHubEmulator, dolt_project: tuple[Config, Store], services: Services, tmp_path: Path
) -> None:
    _, store = dolt_project
    # Two runners: two workspaces (each with its own .platform state), one Dolt server.
    configs = [
        project(tmp_path / f"runner-{i}", store.database, server_url(services)) for i in (1, 2)
    ]
    first = store.resolve("main")
    assert watcher_processes(configs, github) == ["announced-elsewhere", "dispatched"]
    second = commit(store, "a")
    assert watcher_processes(configs, github) == ["announced-elsewhere", "dispatched"]
    assert sent(github) == [first, second]


def test_a_merge_with_notify_and_then_the_watcher_start_one_run(
    github_env: GitHubEmulator,
    dolt_project: tuple[Config, Store],
    services: Services,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, store = dolt_project
    config = project(tmp_path / "cli", store.database, server_url(services), services.mlflow_uri)
    store.create_branch("sheets/examples", "main")
    commit(store, "edit", branch="sheets/examples")
    merge = ["data", "merge", "sheets/examples", "--notify", "--json", "--config", str(config.path)]
    assert main(merge) == 0
    merged = json.loads(capsys.readouterr().out)
    assert merged["notified"] is True
    assert main(["github", "watch", "--once", "--json", "--config", str(config.path)]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "announced-elsewhere"
    assert sent(github_env) == [merged["commit"]]


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
        # The scheduled watchers share the claims: they do not announce the head again.
        assert [e.action for e in watch(config, store, once=True, client=client_for(github))] == [
            "announced-elsewhere"
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
        assert sent(github) == [head, second]
    finally:
        server.shutdown()
        server.server_close()
