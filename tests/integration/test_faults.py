"""Injected faults: killed writers, concurrent writers, restarted and missing servers, secrets.

Each case checks that nothing is lost or half-written: branch heads are either the old or the new
commit, reruns converge, and secrets never show up in output.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from platform_kit import services as svc
from platform_kit.config import Config, load_config
from platform_kit.store import open_store
from tests.conftest import start_services

ROWS = 60_000


def kit(
    *args: str, cwd: Path, env: dict[str, str] | None = None, **kw: object
) -> subprocess.Popen[str]:
    exe = Path(sys.executable).parent / "platform-kit"
    return subprocess.Popen(
        [str(exe), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_sheet(path: Path, rows: int, tag: str = "v1") -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "text", "n"])
        out.writerows([f"r{i:06d}", f"{tag} row {i}", i] for i in range(rows))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("faults")
    (root / "platform.yaml").write_text(
        "project: faults\ndolt: {database: faults}\nsheets:\n  - name: big\n"
        "    source: {file: big.csv}\n    primary_key: [id]\n"
        "    columns: {id: string, text: string, n: int}\n"
    )
    write_sheet(root / "big.csv", ROWS)
    config = load_config(root / "platform.yaml")
    start_services(config)
    yield config
    svc.services_down(config)


def test_sync_killed_mid_write_leaves_old_or_new_head(project: Config) -> None:
    store = open_store(project)
    store.create_database()
    main = store.resolve("main")
    outcomes = []
    for delay in (1.5, 3.0, 4.5):
        proc = kit("sync", "--branch", "main", cwd=project.root)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        head = store.resolve("main")
        rows = len(store.read_table("big", head)) if "big" in store.tables(head) else 0
        assert (head, rows) == (main, 0) or rows == ROWS, "a partial sync reached the branch"
        outcomes.append(head != main)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "platform-kit"), "sync", "--branch", "main", "--json"],
        cwd=project.root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert len(store.read_table("big", "main")) == ROWS  # the rerun converges
    again = subprocess.run(
        [str(Path(sys.executable).parent / "platform-kit"), "sync", "--branch", "main"],
        cwd=project.root,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0 and "no changes" in again.stdout


def test_two_syncs_at_once_make_one_commit(project: Config) -> None:
    store = open_store(project)
    store.create_database()
    write_sheet(project.root / "big.csv", ROWS, tag="v2")
    (project.state_dir / "sync-state.json").unlink(missing_ok=True)
    # The branch does not exist yet: the winner creates it from main and commits once on top.
    before = store.log("sheets/big" if "sheets/big" in store.branches() else "main", 50)
    first, second = kit("sync", cwd=project.root), kit("sync", cwd=project.root)
    results = [(*p.communicate(timeout=600), p.returncode) for p in (first, second)]
    codes = sorted(r[2] for r in results)
    assert codes[0] == 0, results
    if codes[1] != 0:  # the loser fails clearly and writes nothing
        loser = next(r for r in results if r[2] != 0)
        assert "moved" in loser[1] or "another writer" in loser[1], loser[1]
    after = store.log("sheets/big", 50)
    assert len(after) - len(before) == 1
    rows = store.read_table("big", "sheets/big")
    assert len(rows) == ROWS and all(r["text"].startswith("v2 ") for r in rows)


def test_dolt_server_restarted_between_steps(project: Config) -> None:
    store = open_store(project)
    store.create_database()
    head = store.resolve("main")
    svc.services_down(project)
    svc.services_up(project)
    store = open_store(project)  # the new server may listen on another port
    assert store.resolve("main") == head
    write_sheet(project.root / "big.csv", ROWS, tag="v3")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "platform-kit"), "sync", "--branch", "main"],
        cwd=project.root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert store.read_table("big", "main")[0]["text"] == "v3 row 0"


def test_mlflow_down_is_retried_then_reported(project: Config) -> None:
    store = open_store(project)
    store.create_database()
    config_text = project.path.read_text()
    dead = f"http://127.0.0.1:{svc.free_port()}"
    (project.root / "models.yaml").write_text(
        config_text + "models:\n  - name: m\n    query: SELECT text, n FROM big LIMIT 50\n"
        "    trainer: {command: 'true'}\n"
    )
    start = time.monotonic()
    proc = kit(
        "--config",
        "models.yaml",
        "train",
        "--model",
        "m",
        cwd=project.root,
        env={"MLFLOW_TRACKING_URI": dead},
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: MLflow is unreachable")  # one clear line at the end
    assert sum("retry" in line for line in lines) >= 2  # after visible retries with backoff
    assert time.monotonic() - start > 1


def test_secrets_never_appear_in_output(project: Config) -> None:
    canaries = {
        "DOLT_PASSWORD": "dolt-canary-7f3a",
        "GITHUB_TOKEN": "ghp_canary_51c9",
        "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/canary-key-88e1.json",
    }
    outputs = []
    for args in (
        ("sync", "--dry-run", "--verbose"),
        ("services", "status", "--json"),
        ("data", "log", "--verbose"),
    ):
        proc = kit(*args, cwd=project.root, env=canaries)
        out, err = proc.communicate(timeout=300)
        outputs.append(out + err)
    text = "\n".join(outputs)
    for value in canaries.values():
        assert value not in text
