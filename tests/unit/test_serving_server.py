"""The release image's inference server, run in-process and as a process on the host.

The module is loaded from the package's assets (it is no importable module: in the image it sits
beside bow.py), so these tests exercise the file the Dockerfile copies.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from platform_kit.services import free_port
from training.bow import BowModel

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "platform_kit" / "assets" / "serving" / "server.py"
MANIFEST = {"intent-a": "3", "intent-b": "7"}
MD5 = "0123456789abcdef0123456789abcdef"


def write_release(root: Path) -> Path:
    """A models directory as the release context lays it out: manifest.json and one dir each."""
    for index, name in enumerate(MANIFEST):
        BowModel(
            labels=["no", "yes"],
            buckets=16,
            dim=2,
            ngrams=1,
            embedding=np.ones((16, 2), np.float32),
            weight=np.eye(2, dtype=np.float32),
            bias=np.array([0.0, 5.0 * index], np.float32),
        ).save(root / name)
    (root / "manifest.json").write_text(json.dumps({"manifest": MANIFEST, "md5": MD5}))
    return root


@pytest.fixture
def server_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "training"))  # bow.py sits beside server.py in the image
    spec = importlib.util.spec_from_file_location("platform_kit_serving_server", SERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class Running:
    def __init__(self, module: ModuleType, models: Path, delay: float = 0.0) -> None:
        self.log = io.StringIO()
        environ = {module.GIT_SHA: "a" * 40, module.DOLT_COMMIT: "c" * 32}
        self.server = module.Server(
            ("127.0.0.1", 0), module.Release.load(models, environ), log=self.log, delay=delay
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


@pytest.fixture
def running(server_module: ModuleType, tmp_path: Path) -> Iterator[Running]:
    served = Running(server_module, write_release(tmp_path))
    yield served
    served.server.shutdown()
    served.server.server_close()


def settled(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """/metrics once every earlier request is counted: a request is counted and logged just
    after its answer is sent, so a client can scrape before the server has counted it."""
    for _ in range(100):
        found = samples(url)
        if found[("platform_kit_requests_in_flight", frozenset())] == 1:  # only this scrape
            return found
        time.sleep(0.02)
    raise AssertionError("requests stayed in flight")


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """/metrics parsed by Prometheus' own parser (which rejects malformed exposition text)."""
    answer = requests.get(f"{url}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_predicts_reports_the_release_logs_json_lines_and_counts_per_model(
    running: Running,
) -> None:
    url = running.url
    for _ in range(2):
        answer = requests.post(f"{url}/predict/intent-b", json={"texts": ["hi", "yo", "x"]})
        assert answer.status_code == 200
        assert answer.json()["version"] == "7"
        assert [p["label"] for p in answer.json()["predictions"]] == ["yes"] * 3
    assert requests.post(f"{url}/predict/intent-a", json={"text": "x"}).status_code == 400
    assert requests.post(f"{url}/predict/nope", json={"texts": ["x"]}).status_code == 404
    assert requests.post(f"{url}/predict/intent-a", json={"texts": ["x"] * 1001}).status_code == 413
    health = requests.get(f"{url}/health?probe=1").json()
    assert health == {"status": "ok", "models": 2, "md5": MD5, "git_sha": "a" * 40}
    release = {"manifest": MANIFEST, "md5": MD5, "git_sha": "a" * 40, "dolt_commit": "c" * 32}
    assert requests.get(f"{url}/manifest").json() == release
    index = requests.get(f"{url}/").json()
    assert index.items() >= release.items() and index["models"] == sorted(MANIFEST)
    assert requests.get(f"{url}/nothing").status_code == 404

    found = settled(url)

    def value(name: str, **labels: str) -> float | None:
        return found.get((name, frozenset(labels.items())))

    assert (
        value("platform_kit_build_info", manifest_md5=MD5, git_sha="a" * 40, dolt_commit="c" * 32)
        == 1
    )
    assert value("platform_kit_models") == 2
    requests_total = "platform_kit_predict_requests_total"
    assert value(requests_total, model="intent-b", code="200") == 2
    assert value(requests_total, model="intent-a", code="400") == 1
    assert value(requests_total, model="intent-a", code="413") == 1
    assert value(requests_total, model="(unknown)", code="404") == 1
    assert value("platform_kit_predict_errors_total", model="(unknown)", code="404") == 1
    assert value("platform_kit_predict_errors_total", model="intent-b", code="200") is None
    assert value("platform_kit_predict_texts_total", model="intent-b") == 6
    assert value("platform_kit_predict_texts_total", model="intent-a") == 1001
    duration = "platform_kit_predict_duration_seconds"
    assert value(f"{duration}_count", model="intent-b") == 2
    assert value(f"{duration}_bucket", model="intent-b", le="+Inf") == 2
    assert value(f"{duration}_bucket", model="intent-a", le="10.0") == 2
    assert 0 < (value(f"{duration}_sum", model="intent-b") or 0) < 10
    # GETs count as no model, and unknown names share one label value.
    models = {dict(labels).get("model") for _, labels in found} - {None}
    assert models == {"intent-a", "intent-b", "(unknown)"}

    lines = running.lines()
    assert all(set(line) >= {"time", "event"} for line in lines)
    assert lines[0]["time"].endswith("Z")
    access = [line for line in lines if line["event"] == "request" and line["path"] != "/metrics"]
    assert len(access) == 9  # every request
    # A handler thread logs after it answers, so the next request's line may come first.
    first = next(a for a in access if a["model"] == "intent-b")
    assert first["method"] == "POST" and first["path"] == "/predict/intent-b"
    assert first["texts"] == 3 and first["status"] == 200
    assert 0 < first["latency_ms"] < 10_000 and first["client"] == "127.0.0.1"
    predicts = [a for a in access if a["path"].startswith("/predict/")]
    assert sorted((str(a["model"]), a["texts"] or 0, a["status"]) for a in predicts) == [
        ("(unknown)", 0, 404),
        ("intent-a", 0, 400),
        ("intent-a", 1001, 413),
        ("intent-b", 3, 200),
        ("intent-b", 3, 200),
    ]
    health = [a for a in access if a["path"] == "/health?probe=1"]
    assert len(health) == 1 and health[0]["model"] is None


def test_metrics_are_exact_under_concurrent_requests(running: Running) -> None:
    def hammer() -> None:
        with requests.Session() as session:
            for _ in range(25):
                session.post(f"{running.url}/predict/intent-a", json={"texts": ["a", "b"]})

    workers = [threading.Thread(target=hammer) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    found = settled(running.url)
    model = frozenset({("model", "intent-a")})
    assert found[("platform_kit_predict_requests_total", model | {("code", "200")})] == 200
    assert found[("platform_kit_predict_texts_total", model)] == 400
    assert found[("platform_kit_predict_duration_seconds_count", model)] == 200
    assert len([line for line in running.lines() if line.get("model") == "intent-a"]) == 200


def test_label_values_are_escaped(server_module: ModuleType, tmp_path: Path) -> None:
    release = server_module.Release.load(
        write_release(tmp_path), {server_module.GIT_SHA: 'a"b\\c\nd'}
    )
    metrics = server_module.Metrics()
    metrics.observe('we"ird\\', 200, 0.002, 1)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render(release, 0))}
    assert families["platform_kit_build_info"].samples[0].labels["git_sha"] == 'a"b\\c\nd'
    bucket = families["platform_kit_predict_duration_seconds"].samples[1]
    assert bucket.labels == {"model": 'we"ird\\', "le": "0.0025"} and bucket.value == 1


def test_sigterm_drains_the_request_in_flight_then_exits_0(tmp_path: Path) -> None:
    """The real signal path: server.py as a process, as the image runs it."""
    process, url = _serve(
        tmp_path, PLATFORM_KIT_TEST_PREDICT_DELAY="1.5", PLATFORM_KIT_GIT_SHA="b" * 40
    )
    try:
        _wait(url)
        slow: dict[str, Any] = {}

        def call() -> None:
            slow["answer"] = requests.post(f"{url}/predict/intent-a", json={"texts": ["x"]})

        caller = threading.Thread(target=call)
        caller.start()
        _wait_in_flight(url, 2)  # the slow request and this scrape
        process.send_signal(signal.SIGTERM)
        refused = False
        while caller.is_alive() and not refused:
            try:
                requests.get(f"{url}/health", timeout=0.5)
            except requests.ConnectionError:
                refused = True  # no longer accepting, while the slow request still runs
        caller.join(10)
        assert refused
        assert slow["answer"].status_code == 200
        assert process.wait(10) == 0
    finally:
        process.kill()
        out = process.communicate()[0]
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events if e["event"] != "request"] == [
        "start",
        "draining",
        "stopped",
    ]
    assert events[0]["git_sha"] == "b" * 40 and events[0]["md5"] == MD5
    assert events[-1]["drained"] is True
    predicted = [e for e in events if e.get("model") == "intent-a"]
    assert len(predicted) == 1 and predicted[0]["status"] == 200
    assert predicted[0]["latency_ms"] >= 1500


def test_a_drain_that_times_out_exits_1(tmp_path: Path) -> None:
    process, url = _serve(tmp_path, PLATFORM_KIT_TEST_PREDICT_DELAY="5", DRAIN_SECONDS="0.5")
    try:
        _wait(url)
        caller = threading.Thread(
            target=lambda: _ignore(
                lambda: requests.post(f"{url}/predict/intent-a", json={"texts": ["x"]}, timeout=10)
            ),
            daemon=True,
        )
        caller.start()
        _wait_in_flight(url, 2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 1
    finally:
        process.kill()
        out = process.communicate()[0]
    assert json.loads(out.splitlines()[-1]) | {"time": ""} == {
        "time": "",
        "event": "stopped",
        "drained": False,
        "in_flight": 1,
    }


def _serve(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], str]:
    """server.py as a process, as the image runs it, on a release in ``tmp_path``."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER)],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "training"),
            "MODELS": str(write_release(tmp_path)),
            "PORT": str(port),
            **env,
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def _ignore(call: Any) -> None:
    with contextlib.suppress(requests.RequestException):
        call()


def _wait(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(f"{url}/health", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer")


def _wait_in_flight(url: str, count: int) -> None:
    gauge = ("platform_kit_requests_in_flight", frozenset())
    for _ in range(100):
        if samples(url)[gauge] >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"never {count} requests in flight")


def test_manifest_json_commits_take_precedence_over_the_environment(
    server_module: ModuleType, tmp_path: Path
) -> None:
    models = write_release(tmp_path)
    environ = {server_module.GIT_SHA: "e" * 40, server_module.DOLT_COMMIT: "f" * 32}
    assert server_module.Release.load(models, environ).git_sha == "e" * 40
    assert server_module.Release.load(models, {}).git_sha == "unknown"
    data = json.loads((models / "manifest.json").read_text())
    data |= {"git_sha": "1" * 40, "dolt_commit": "2" * 32}
    (models / "manifest.json").write_text(json.dumps(data))
    loaded = server_module.Release.load(models, environ)
    assert (loaded.git_sha, loaded.dolt_commit) == ("1" * 40, "2" * 32)


def test_a_connection_error_is_one_json_line(running: Running) -> None:
    try:
        raise ConnectionResetError("the client hung up")
    except ConnectionResetError:
        running.server.handle_error(None, ("192.0.2.1", 40000))
    error = running.lines()[-1]
    assert error["event"] == "error" and error["client"] == "192.0.2.1"
    assert "the client hung up" in error["message"] and "Traceback" in error["traceback"]
