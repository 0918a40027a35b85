"""Training interrupted: the kit killed mid-run, MLflow restarted or gone mid-run.

Real Dolt and MLflow servers that this module starts (and kills); a command trainer that sleeps,
so that faults land while models are training and being recorded. After each fault: no version
without its artifacts, nothing half-registered, and a rerun ends with exactly one version per
model, each holding the production alias.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from platform_kit import endpoints
from platform_kit import services as svc
from platform_kit.config import Config, load_config
from tests.conftest import start_services

GROUPS = [f"g{i:02d}" for i in range(10)]
TRAINER = """\
sleep "${TRAIN_SLEEP:-1}"
mkdir -p "$2/model"
cp "$1" "$2/model/data.csv"
echo '{"rows": 1}' > "$2/metrics.json"
"""


def kit(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "platform-kit"), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Config]:
    (tmp_path / "platform.yaml").write_text(
        f"project: tf{tmp_path.name[-6:].lower()}\n"
        "dolt: {database: trainfaults}\n"
        "sheets:\n  - name: items\n    source: {file: items.csv}\n    primary_key: [id]\n"
        "    columns: {id: string, grp: string, text: string}\n"
        "models:\n  - family: m\n    for_each: SELECT DISTINCT grp FROM items\n"
        "    name: 'tf-{grp}'\n    query: SELECT id, text FROM items WHERE grp = %(grp)s\n"
        "    trainer: {command: 'sh trainer.sh {data} {out}'}\n"
    )
    (tmp_path / "trainer.sh").write_text(TRAINER)
    with (tmp_path / "items.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "grp", "text"])
        out.writerows([f"{g}-{i}", g, f"row {i} of {g}"] for g in GROUPS for i in range(20))
    config = load_config(tmp_path / "platform.yaml")
    try:
        start_services(config)
        code, _, err = finish(kit("sync", "--branch", "main", cwd=tmp_path))
        assert code == 0, err
        yield config
    finally:
        svc.services_down(config)  # also when a test killed MLflow and left it down


def client(config: Config) -> MlflowClient:
    return MlflowClient(endpoints.mlflow_uri(config))


def versions(config: Config) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for mv in client(config).search_model_versions("name LIKE 'tf-g%'", max_results=1000):
        found.setdefault(mv.name, []).append(int(mv.version))
    return found


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def registered(config: Config, at_least: int) -> Callable[[], bool]:
    return lambda: sum(len(v) for v in versions(config).values()) >= at_least


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def assert_every_version_has_artifacts(config: Config) -> None:
    mlflow = client(config)
    for mv in mlflow.search_model_versions("name LIKE 'tf-g%'", max_results=1000):
        files = [f.path for f in mlflow.list_artifacts(mv.run_id, "model")]
        assert files == ["model/data.csv"], (mv.name, mv.version, files)


def assert_converged(config: Config) -> None:
    """Exactly one version per model, each holding the production alias."""
    found = versions(config)
    assert found == {f"tf-{g}": [1] for g in GROUPS}
    mlflow = client(config)
    for name in found:
        assert mlflow.get_model_version_by_alias(name, "production").version == "1", name
    assert_every_version_has_artifacts(config)


def kill_mlflow(config: Config) -> int:
    record = endpoints.read_state(config)["mlflow"]
    os.killpg(int(record["pid"]), signal.SIGKILL)
    wait_for(lambda: gone(int(record["pid"])), "MLflow to die", 30)
    return int(record["port"])


def test_train_killed_mid_run_then_rerun_completes(project: Config) -> None:
    proc = kit("train", "--workers", "2", cwd=project.root)
    wait_for(registered(project, 2), "two registered versions")
    workers = children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recorded = versions(project)
    assert 2 <= sum(map(len, recorded.values())) < len(GROUPS)
    # The pool's workers notice and stop instead of training for nobody.
    wait_for(lambda: all(gone(pid) for pid in workers), "orphaned workers to exit", 15)
    assert_every_version_has_artifacts(project)

    code, _, err = finish(kit("train", "--workers", "2", cwd=project.root))
    assert code == 0, err
    assert_converged(project)
    again = finish(kit("train", "--json", cwd=project.root))
    assert again[0] == 0 and '"trained": 0' in again[1]


def test_mlflow_restarted_mid_run_is_retried(project: Config) -> None:
    # A longer leash than the default ~20 s: a loaded CI machine may take that long to restart.
    patient = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4"}
    proc = kit("train", "--workers", "2", cwd=project.root, env=patient)
    wait_for(registered(project, 1), "a registered version")
    port = kill_mlflow(project)
    time.sleep(2)
    svc.services_up(project)
    assert endpoints.mlflow_uri(project) == f"http://127.0.0.1:{port}"  # the URL the run holds
    code, _, err = finish(proc)
    assert code == 0, err  # MLflow's request retries and the kit's own carried it over the gap
    assert_converged(project)


def test_mlflow_gone_mid_run_fails_clearly_and_rerun_completes(project: Config) -> None:
    proc = kit("train", "--workers", "2", cwd=project.root)
    wait_for(registered(project, 1), "a registered version")
    kill_mlflow(project)
    started = time.monotonic()
    code, _, err = finish(proc)
    assert code == 3, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: MLflow is unreachable while trying to"), last
    assert "training stopped with" in last and "models done" in last
    assert time.monotonic() - started < 90  # gives up once, not once per remaining model

    svc.services_up(project)
    assert_every_version_has_artifacts(project)
    code, _, err = finish(kit("train", "--workers", "2", cwd=project.root))
    assert code == 0, err
    assert_converged(project)


def test_interrupted_promotion_is_finished_by_the_next_run(project: Config) -> None:
    code, _, err = finish(kit("train", "--workers", "2", cwd=project.root))
    assert code == 0, err
    # As if the run died right after registering tf-g03's version: no alias was set.
    client(project).delete_registered_model_alias("tf-g03", "production")
    # plan gives it a job (so the GitHub matrix runs one), train finishes it without retraining.
    code, out, err = finish(kit("plan", "--json", cwd=project.root))
    assert code == 0, err
    planned = {m["name"]: m["reason"] for m in json.loads(out)["models"] if m["train"]}
    assert planned == {"tf-g03": "promotion interrupted"}
    code, out, err = finish(kit("train", "--json", cwd=project.root))
    assert code == 0, err
    assert '"trained": 0' in out and "interrupted run left" in out
    assert_converged(project)
