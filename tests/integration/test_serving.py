"""The release image as an operator runs it: a container on the real engine, read through
'docker logs' and /metrics, stopped with SIGTERM.

One image (two models in the real MLflow server) serves both tests: builds on vfs are slow.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from platform_kit import release
from platform_kit.project import Project
from platform_kit.services import free_port
from tests.conftest import REGISTRY, Services
from tests.integration.test_release import model_version, write_release_project

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass(frozen=True)
class Image:
    reference: str
    tag: str
    manifest: dict[str, str]
    labels: dict[str, str]

    @property
    def models(self) -> list[str]:
        return sorted(self.manifest)


@pytest.fixture(scope="module")
def image(
    services: Services, docker_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Image]:
    """A release of two models, built (not pushed) and removed from the engine afterwards."""
    tmp = tmp_path_factory.mktemp("serving")
    suffix = uuid.uuid4().hex[:8]
    a, b = f"serve-a-{suffix}", f"serve-b-{suffix}"
    repository = f"{REGISTRY}/serving-test-{suffix}"
    config = write_release_project(tmp / "project", services, [a, b], repository)
    client = MlflowClient(services.mlflow_uri)
    manifest = {
        a: model_version(client, a, tmp, 0.0),
        b: model_version(client, b, tmp, 5.0),
    }
    project = Project(config)
    built = release.build_release(
        config,
        store=project.store,
        models=project.models,
        releases=project.releases,
        registry=project.registry,
        engine=project.get_engine,
        tracking_uri=project.mlflow_uri,
        push=False,
    )
    assert built.built and built.manifest == manifest
    reference = built.reference
    yield Image(reference, built.tag, manifest, docker_client.images.get(reference).labels)
    docker_client.images.remove(reference, noprune=False)


@pytest.fixture
def run(docker_client: Any) -> Iterator[Any]:
    """Start a container of an image on the host network (the engine has no bridge here)."""
    containers: list[Any] = []

    def start(reference: str, **environment: str) -> tuple[Any, str]:
        port = free_port()
        container = docker_client.containers.run(
            reference,
            detach=True,
            network_mode="host",
            environment={"PORT": str(port), **environment},
        )
        containers.append(container)
        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                requests.get(f"{url}/health", timeout=1)
                return container, url
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError(f"the serving container did not answer: {container.logs()[-500:]!r}")

    yield start
    for container in containers:
        container.remove(force=True)


def test_the_container_logs_json_lines_and_serves_metrics_per_model(image: Image, run: Any) -> None:
    a, b = image.models
    container, url = run(image.reference)
    revision = image.labels["org.opencontainers.image.revision"]
    assert len(revision) == 40
    release_info = {
        "manifest": image.manifest,
        "md5": image.tag,
        "git_sha": revision,
        "dolt_commit": "c" * 32,
    }
    assert requests.get(f"{url}/manifest", timeout=5).json() == release_info
    health = requests.get(f"{url}/health", timeout=5).json()
    assert health == {"status": "ok", "models": 2, "md5": image.tag, "git_sha": revision}

    for texts in (["yes please"], ["a", "b", "c"], []):
        answer = requests.post(f"{url}/predict/{b}", json={"texts": texts}, timeout=5)
        assert answer.status_code == 200 and answer.json()["version"] == image.manifest[b]
    assert requests.post(f"{url}/predict/{a}", json={"text": "x"}, timeout=5).status_code == 400
    for _ in range(2):
        missing = requests.post(f"{url}/predict/no-such-model", json={"texts": ["x"]}, timeout=5)
        assert missing.status_code == 404

    found = _settled(url)

    def value(name: str, **labels: str) -> float | None:
        return found.get((name, frozenset(labels.items())))

    build = {"manifest_md5": image.tag, "git_sha": revision, "dolt_commit": "c" * 32}
    assert value("platform_kit_build_info", **build) == 1
    assert value("platform_kit_models") == 2
    total, errors = "platform_kit_predict_requests_total", "platform_kit_predict_errors_total"
    assert value(total, model=b, code="200") == 3
    assert value(total, model=a, code="400") == 1
    assert value(total, model="(unknown)", code="404") == 2
    assert value(errors, model=a, code="400") == 1
    assert value(errors, model="(unknown)", code="404") == 2
    assert value(errors, model=b, code="200") is None
    assert value("platform_kit_predict_texts_total", model=b) == 4
    assert value("platform_kit_predict_duration_seconds_count", model=b) == 3
    assert value("platform_kit_predict_duration_seconds_bucket", model=b, le="+Inf") == 3
    assert 0 < (value("platform_kit_predict_duration_seconds_sum", model=b) or 0) < 5

    # 'docker logs': nothing but JSON lines, one per request.
    def posts(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [x for x in lines if x["event"] == "request" and x["method"] == "POST"]

    lines = _log_lines(container, lambda lines: len(posts(lines)) >= 6)
    start = lines[0]
    assert start["event"] == "start" and start["md5"] == image.tag and start["git_sha"] == revision
    access = posts(lines)
    assert [(x["model"], x["texts"], x["status"]) for x in access] == [
        (b, 1, 200),
        (b, 3, 200),
        (b, 0, 200),
        (a, None, 400),
        ("(unknown)", None, 404),
        ("(unknown)", None, 404),
    ]
    assert all(x["path"].startswith("/predict/") and x["latency_ms"] >= 0 for x in access)
    assert all(x["time"].endswith("Z") for x in lines)


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(image: Image, run: Any) -> None:
    a = image.models[0]
    container, url = run(image.reference, PLATFORM_KIT_TEST_PREDICT_DELAY="3")
    slow: dict[str, Any] = {}

    def predict() -> None:
        slow["answer"] = requests.post(f"{url}/predict/{a}", json={"texts": ["x"]}, timeout=30)
        slow["at"] = time.monotonic()

    caller = threading.Thread(target=predict)
    caller.start()
    for _ in range(100):  # the slow request and the scrape itself
        if _samples(url)[("platform_kit_requests_in_flight", frozenset())] >= 2:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the slow request never arrived")
    container.kill(signal="SIGTERM")  # what 'docker stop' and Kubernetes send first
    signalled = time.monotonic()
    refused = False
    while caller.is_alive() and not refused:
        try:
            requests.get(f"{url}/health", timeout=0.5)
            time.sleep(0.05)
        except requests.ConnectionError:
            refused = True
    assert refused, "new connections were still accepted until the slow request ended"
    caller.join(30)
    assert slow["answer"].status_code == 200
    assert slow["answer"].json()["version"] == image.manifest[a]
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert time.monotonic() - signalled < 10  # exited once drained, not at a kill deadline
    lines = _log_lines(container, lambda lines: bool(lines) and lines[-1]["event"] == "stopped")
    events = [line["event"] for line in lines if line["event"] != "request"]
    assert events == ["start", "draining", "stopped"]
    assert lines[-1]["drained"] is True and lines[-1]["in_flight"] == 0
    predicted = [line for line in lines if line.get("model") == a]
    assert len(predicted) == 1 and predicted[0]["status"] == 200
    assert predicted[0]["latency_ms"] >= 3000


def _samples(url: str) -> Samples:
    """/metrics parsed by Prometheus' own parser, which rejects malformed exposition text."""
    answer = requests.get(f"{url}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def _settled(url: str) -> Samples:
    """/metrics once every earlier request is counted (each is counted just after its answer)."""
    for _ in range(100):
        found = _samples(url)
        if found[("platform_kit_requests_in_flight", frozenset())] == 1:  # only this scrape
            return found
        time.sleep(0.05)
    raise AssertionError("requests stayed in flight")


def _log_lines(container: Any, until: Any) -> list[dict[str, Any]]:
    """The container's log, each line parsed as JSON, once ``until(lines)`` holds: the engine
    copies a container's output into its log asynchronously."""
    for _ in range(100):
        text = container.logs(stdout=True, stderr=True).decode()
        lines = [json.loads(line) for line in text.splitlines()]
        if until(lines):
            break
        time.sleep(0.05)
    return lines
