"""Releases on the real engine and registry, with model versions in the real MLflow server.

A release is assembled in the registry over a runtime image the engine builds once per set of
inputs (``<image>:kit-runtime-<hash>``); running a pushed release means pulling it first, as
production does. Runtime builds and pulls on vfs are slow, so the flows share them.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mysql.connector
import numpy as np
import pytest
import requests
from mlflow.tracking import MlflowClient

from platform_kit import endpoints, release
from platform_kit import services as svc
from platform_kit.cli import main
from platform_kit.config import Config, load_config
from platform_kit.endpoints import Service
from platform_kit.errors import ImageNotFoundError, ReleaseError, ServiceError, UsageError
from platform_kit.project import Project
from platform_kit.release.layers import buckets_of
from platform_kit.release.manifest import manifest_md5
from platform_kit.services import free_port
from platform_kit.store.dolt import DoltStore
from platform_kit.tracking.releases import ROLLBACK, ReleaseLog
from platform_kit.tracking.rest import MlflowRest
from tests.conftest import REGISTRY, Services, require, write_project
from training.bow import BowModel

ROOT = Path(__file__).resolve().parents[2]
# This checkout's CLI, whatever checkout the environment's editable install points at.
CLI = [sys.executable, "-c", "import sys; from platform_kit.cli import main; sys.exit(main())"]


def model_version(client: MlflowClient, name: str, tmp: Path, bias: float) -> str:
    """Register a servable version of ``name`` the way the trainer does, and promote it."""
    experiment = client.get_experiment_by_name("release-test") or client.get_experiment(
        client.create_experiment("release-test")
    )
    run = client.create_run(experiment.experiment_id)
    model = BowModel(
        labels=["no", "yes"],
        buckets=64,
        dim=4,
        ngrams=1,
        embedding=np.ones((64, 4), np.float32),
        weight=np.eye(2, 4, dtype=np.float32),
        bias=np.array([0.0, bias], np.float32),
    )
    out = tmp / name / run.info.run_id
    model.save(out)
    client.log_artifacts(run.info.run_id, str(out), "model")
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name,
        f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"dolt.commit": "c" * 32, "model.name": name, "git.sha": "d" * 40},
    )
    client.set_registered_model_alias(name, "production", version.version)
    return str(version.version)


def build(config: Config) -> release.ReleaseResult:
    """``release build --push`` as a library call, its backends built by a Project."""
    project = Project(config)
    return release.build_release(
        config,
        store=project.store,
        models=project.models,
        releases=project.releases,
        registry=project.registry,
        engine=project.get_engine,
        tracking_uri=project.mlflow_uri,
    )


def rollback(config: Config, tag: str) -> release.DeployResult:
    project = Project(config)
    return release.rollback_release(
        config, tag, store=project.store, releases=project.releases, registry=project.registry
    )


def deploy(config: Config, tag: str) -> release.DeployResult:
    project = Project(config)
    return release.deploy_release(
        config, tag, store=project.store, releases=project.releases, registry=project.registry
    )


def tags_of(image: str) -> list[str]:
    host, repo = image.split("/", 1)
    return list(requests.get(f"http://{host}/v2/{repo}/tags/list", timeout=5).json()["tags"])


def layer_digests(image: str, tag: str) -> list[str]:
    """The layers of ``image:tag`` as the registry lists them (not through the kit)."""
    host, repo = image.split("/", 1)
    found = requests.get(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=5,
    )
    found.raise_for_status()
    return [layer["digest"] for layer in found.json()["layers"]]


def production_digest(image: str) -> str:
    """What <image>:production names, asked of the registry directly (not the kit's client)."""
    host, repo = image.split("/", 1)
    return requests.head(
        f"http://{host}/v2/{repo}/manifests/production",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=5,
    ).headers["Docker-Content-Digest"]


@pytest.fixture
def second_mlflow(tmp_path: Path) -> Iterator[str]:
    """Another MLflow server (its own store), started the way the session's is."""
    config = write_project(tmp_path / "second-mlflow")
    try:
        statuses = svc.services_up(config, only=[Service.MLFLOW])
    except Exception as exc:
        require("a second mlflow server", str(exc))
    if not all(s.healthy for s in statuses if s.name == "mlflow"):
        require("a second mlflow server", "not healthy after 'services up'")
    try:
        yield endpoints.mlflow_uri(config)
    finally:
        svc.services_down(config)


def write_release_project(root: Path, services: Services, names: list[str], image: str) -> Config:
    suffix = uuid.uuid4().hex[:8]
    database = f"rel_{suffix}"
    models = "".join(
        f"  - name: {n}\n    query: SELECT 1\n    trainer: training.intent:train\n" for n in names
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(
        f"project: rel-{suffix}\ndolt: {{database: {database}, server: 'mysql://root@"
        f"{services.dolt.host}:{services.dolt.port}'}}\n"
        f"mlflow: {{tracking_uri: '{services.mlflow_uri}'}}\n"
        f"models:\n{models}release: {{image: {image}}}\n"
    )
    DoltStore(services.dolt.host, services.dolt.port, "root", "", database).create_database()
    return load_config(root / "platform.yaml")


@pytest.fixture
def names() -> list[str]:
    suffix = uuid.uuid4().hex[:8]  # registry model names are global: unique per test
    return [f"rel-a-{suffix}", f"rel-b-{suffix}"]


@pytest.fixture
def image_name(docker_client: Any) -> Iterator[Any]:
    """Unique image repositories for a test, removed from the engine afterwards (vfs keeps a
    full copy of every layer, so leftovers add up); what was pushed stays in the registry."""
    made: list[str] = []

    def name(registry: str) -> str:
        made.append(f"{registry}/release-test-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield name
    for image in docker_client.images.list():
        for reference in image.tags:
            if reference.rsplit(":", 1)[0] in made:
                docker_client.images.remove(reference, noprune=False)


@pytest.fixture
def readonly_registry(tmp_path: Path) -> Iterator[str]:
    """A second real registry that serves reads but refuses every push (maintenance mode)."""
    address = f"127.0.0.1:{free_port()}"
    (tmp_path / "registry.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'registry'}}}, "
        "maintenance: {readonly: {enabled: true}}}\n"
        f"http: {{addr: {address}}}\n"
    )
    try:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(tmp_path / "registry.yml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        require("docker-registry", "not installed (infra/docker-up.sh installs it)")
    try:
        for _ in range(50):
            try:
                requests.get(f"http://{address}/v2/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_build_serve_noop_races_single_model_rollback_and_release_rollback(
    services: Services,
    docker_client: Any,
    names: list[str],
    image_name: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    second_mlflow: str,
) -> None:
    a, b = names
    image = image_name(REGISTRY)
    config = write_release_project(tmp_path / "project", services, names, image)
    client = MlflowClient(services.mlflow_uri)
    with pytest.raises(ReleaseError, match=f"no 'production' version for: {a}, {b}"):
        build(config)
    manifest = {
        a: model_version(client, a, tmp_path, 0.0),
        b: model_version(client, b, tmp_path, 5.0),
    }

    # Two release builds at once, in two workspaces (two project directories: no file is
    # shared, only the Dolt server): the Dolt release lock gives one image and one record.
    workspaces = [config.path]
    other = tmp_path / "other-runner"
    other.mkdir()
    shutil.copy(config.path, other / "platform.yaml")
    workspaces.append(other / "platform.yaml")
    racers = [
        subprocess.Popen(
            [*CLI, "release", "build", "--push", "--json", "--config", str(path)],
            cwd=path.parent,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in workspaces
    ]
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=600)
        assert racer.returncode == 0, err
        outcomes.append(json.loads(out))
    assert sorted(o["built"] for o in outcomes) == [False, True]
    assert sorted(o["recorded"] for o in outcomes) == [False, True]
    tag = outcomes[0]["tag"]
    assert outcomes[1]["tag"] == tag and outcomes[0]["manifest"] == manifest
    assert outcomes[0]["reference"] == f"{image}:{tag}" and outcomes[0]["image"] == image
    assert outcomes[0]["left_out"] == [] and len(outcomes[0]["ref"]) == 32
    log = ReleaseLog(client)
    assert [r.tag for r in log.all() if r.image == image] == [tag]

    # The tag, recomputed independently from the aliases, is the MD5 of the canonical JSON.
    by_alias = {n: client.get_model_version_by_alias(n, "production").version for n in names}
    canonical = json.dumps(by_alias, sort_keys=True, separators=(",", ":")).encode()
    assert tag == hashlib.md5(canonical).hexdigest() == manifest_md5(manifest)
    reference = f"{image}:{tag}"
    built = docker_client.images.pull(image, tag=tag)  # assembled in the registry: pull it
    labels = built.labels
    assert labels["platform-kit.manifest.md5"] == tag
    assert json.loads(labels["platform-kit.manifest"]) == manifest
    assert labels["platform-kit.dolt.commit"] == "c" * 32
    assert len(labels["org.opencontainers.image.revision"]) == 40
    # Content identity: each model's run id and the digest of its files.
    identity = json.loads(labels["platform-kit.models"])
    for n in names:
        run_id = client.get_model_version_by_alias(n, "production").run_id
        assert identity[n]["run_id"] == run_id
        files = Path(client.download_artifacts(run_id, "model", str(tmp_path / f"dl-{n}")))
        assert identity[n]["digest"] == release.model_digest(files)
    assert built.attrs["Config"]["User"] == "10001:10001"
    assert built.attrs["Size"] <= 400e6
    steps = [h["CreatedBy"] for h in built.history() if "LABEL" not in h["CreatedBy"]]
    assert steps[0] == "platform-kit: COPY manifest.json in /models/"  # the last layer
    buckets = len(buckets_of(names))  # 1 or 2: random names may share a bucket
    assert all("COPY models (" in step for step in steps[1 : 1 + buckets])  # a layer per bucket
    assert "COPY models (" not in steps[1 + buckets]  # then the runtime's steps
    assert not any("/tmp/wheels" in step for step in steps)
    runtime = [t for t in tags_of(image) if t.startswith("kit-runtime-")]
    assert len(runtime) == 1  # pushed once, beside the releases

    _serve_and_check(docker_client, reference, manifest, tag, b)

    # Another MLflow server, the same model names, the same image name: the same manifest
    # {a: "1", b: "1"} and so the same tag, but other models. The pushed tag is refused by name.
    elsewhere = write_release_project(tmp_path / "elsewhere", services, names, image)
    other_client = MlflowClient(second_mlflow)
    assert {n: model_version(other_client, n, tmp_path, 1.0) for n in names} == manifest
    (tmp_path / "elsewhere" / "platform.yaml").write_text(
        (tmp_path / "elsewhere" / "platform.yaml")
        .read_text()
        .replace(services.mlflow_uri, second_mlflow)
    )
    elsewhere = load_config(tmp_path / "elsewhere" / "platform.yaml")
    with pytest.raises(ReleaseError, match=f"other content: the models {a}, {b} come from other"):
        build(elsewhere)
    assert ReleaseLog(other_client).all() == []  # nothing recorded there

    again = build(config)  # unchanged aliases: a no-op
    assert not again.built and not again.recorded and again.tag == tag
    assert [r.tag for r in log.all() if r.image == image] == [tag]

    # A build that pushed and then lost MLflow left no record: the next build only records it.
    rest_log = ReleaseLog(client, rest=MlflowRest(services.mlflow_uri))
    assert rest_log.recorded(tag) and log.recorded(tag)
    client.delete_run(log.find(tag).run_id)  # type: ignore[union-attr]
    assert not rest_log.recorded(tag) and not log.recorded(tag)
    repaired = build(config)
    assert not repaired.built and repaired.recorded and repaired.tag == tag
    assert [r.tag for r in log.all() if r.image == image] == [tag]

    # Both models move on: the second release.
    v2 = {a: model_version(client, a, tmp_path, 5.0), b: model_version(client, b, tmp_path, 0.0)}
    second = build(config)
    assert second.built and second.manifest == v2
    assert release.diff_releases(ReleaseLog(client), tag, second.tag) == {
        a: (manifest[a], v2[a]),
        b: (manifest[b], v2[b]),
    }

    # Single-model rollback, then a release: a new tag differing in exactly that model.
    assert (
        main(["model", "rollback", b, "--to-version", manifest[b], "--config", str(config.path)])
        == 0
    )
    third = build(config)
    assert third.built and third.tag not in (tag, second.tag)
    assert third.manifest == {a: v2[a], b: manifest[b]}
    assert release.diff_releases(ReleaseLog(client), second.tag, third.tag) == {
        b: (v2[b], manifest[b])
    }
    listed = release.list_releases(config, ReleaseLog(client))
    assert [(r["tag"], r["changed"]) for r in listed] == [
        (third.tag, [b]),
        (second.tag, [a, b]),
        (tag, [a, b]),
    ]
    capsys.readouterr()
    assert main(["release", "list", "--json", "--config", str(config.path)]) == 0
    assert [r["tag"] for r in json.loads(capsys.readouterr().out)] == [r["tag"] for r in listed]
    assert (
        main(["release", "diff", second.tag, third.tag, "--json", "--config", str(config.path)])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {b: {"from": v2[b], "to": manifest[b]}}

    _partial_releases_and_ref(services, tmp_path, names, image, third)

    # Deploy: production moves forwards; a second deploy of the same tag moves nothing.
    capsys.readouterr()
    assert main(["release", "status", "--json", "--config", str(config.path)]) == 0
    assert json.loads(capsys.readouterr().out)["tag"] is None  # never deployed
    deployed = deploy(config, second.tag)
    assert deployed.moved and deployed.previous_digest is None and deployed.previous_tag is None
    assert (
        production_digest(image)
        == docker_client.images.get_registry_data(f"{image}:{second.tag}").id
    )
    assert not deploy(config, second.tag).moved

    # Whole-release rollback, a deploy to an earlier tag: unknown and malformed tags are refused.
    with pytest.raises(ImageNotFoundError, match="not in the registry"):
        rollback(config, "0" * 32)
    with pytest.raises(UsageError, match="not a release tag"):
        rollback(config, "latest")
    assert main(["release", "rollback", "0" * 32, "--config", str(config.path)]) == 2
    rolled = rollback(config, tag)
    assert rolled.manifest == manifest and rolled.previous_tag == second.tag
    assert production_digest(image) == docker_client.images.get_registry_data(reference).id
    experiment = client.get_experiment_by_name("platform-kit-releases")
    assert experiment is not None
    rollbacks = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{ROLLBACK}` = '{tag}' and tags.`release.image` = '{image}'",
    )
    assert len(rollbacks) == 1
    assert rollbacks[0].data.tags["release.deploy.from"] == second.tag
    assert [r["tag"] for r in release.list_releases(config, ReleaseLog(client))] == [
        third.tag,
        second.tag,
        tag,
    ]

    # 'release build --deploy': nothing new to build, production moves forwards to it.
    capsys.readouterr()
    assert main(["release", "build", "--deploy", "--json", "--config", str(config.path)]) == 0
    forwards = json.loads(capsys.readouterr().out)
    assert forwards["tag"] == third.tag and not forwards["built"]
    assert forwards["deploy"]["moved"] and forwards["deploy"]["previous_tag"] == tag
    assert (
        production_digest(image)
        == docker_client.images.get_registry_data(f"{image}:{third.tag}").id
    )

    # 'release status': where production points, and every move: from, to, who, when, Git SHA.
    assert main(["release", "status", "--json", "--config", str(config.path)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["tag"] == third.tag and status["production"] == f"{image}:production"
    moves = [(m["kind"], m["from"], m["tag"]) for m in status["history"]]
    assert moves == [
        ("deploy", tag, third.tag),
        ("rollback", second.tag, tag),
        ("deploy", None, second.tag),
    ]
    for move in status["history"]:
        assert move["by"] == getpass.getuser() and len(move["git_sha"]) == 40
        assert abs(move["created_ms"] / 1000 - time.time()) < 3600
    assert main(["release", "status", "--config", str(config.path)]) == 0  # the table for people
    assert main(["release", "list", "--config", str(config.path)]) == 0
    table = capsys.readouterr().out
    assert all(t in table for t in (tag, second.tag, third.tag))  # whole, even 80 columns wide


def _partial_releases_and_ref(
    services: Services, tmp_path: Path, names: list[str], image: str, pushed: release.ReleaseResult
) -> None:
    """A model never in production is left out with a warning, or refused with require_all;
    the manifest resolves at the Dolt commit given (no build: the release is already pushed)."""
    a, b = names
    c = f"{a}-never"
    project = write_release_project(tmp_path / "partial", services, [a], image)
    database = project.dolt.database
    conn = mysql.connector.connect(
        host=services.dolt.host, port=services.dolt.port, user="root", database=database
    )
    cur = conn.cursor(buffered=True)  # CALL DOLT_COMMIT answers with a row
    cur.execute("CREATE TABLE m (n VARCHAR(100) PRIMARY KEY)")
    cur.execute("INSERT INTO m VALUES (%s), (%s)", (a, b))
    cur.execute("CALL DOLT_COMMIT('-Am', 'two models')")
    cur.execute("SELECT HASHOF('main')")
    (two,) = cur.fetchone()  # type: ignore[misc]
    cur.execute("INSERT INTO m VALUES (%s)", (c,))
    cur.execute("CALL DOLT_COMMIT('-Am', 'a third, never trained')")
    conn.close()
    family = (
        "  - family: rel\n    for_each: SELECT n FROM m\n    name: '{n}'\n"
        "    query: SELECT 1\n    trainer: training.intent:train\n"
    )
    text = project.path.read_text()
    head, _, rest = text.partition("models:\n")
    rest = rest[rest.index("release:") :]
    project.path.write_text(f"{head}models:\n{family}{rest}")
    project = load_config(project.path)

    p = Project(project)
    resolved = release.resolve_manifest(project, p.store, p.models, ref=two)
    assert (resolved.manifest, resolved.left_out, resolved.commit) == (pushed.manifest, [], two)
    result = build(project)  # at the head: c is left out, the rest is the pushed release
    assert (result.tag, result.built, result.left_out) == (pushed.tag, False, (c,))
    strict = project.path.read_text().replace("release: {", "release: {require_all: true, ")
    project.path.write_text(strict)
    with pytest.raises(ReleaseError, match=f"no 'production' version for: {c}") as refused:
        build(load_config(project.path))
    assert "require_all" in str(refused.value.hint)


def test_one_changed_model_uploads_one_model_layer_and_the_pushed_image_serves(
    services: Services,
    docker_client: Any,
    names: list[str],
    image_name: Any,
    tmp_path: Path,
) -> None:
    names = [*names, f"{names[0]}-c", f"{names[0]}-d"]
    image = image_name(REGISTRY)
    config = write_release_project(tmp_path / "project", services, names, image)
    client = MlflowClient(services.mlflow_uri)
    for n in names:
        model_version(client, n, tmp_path, 0.0)
    first = build(config)
    assert first.built and len(first.uploaded) >= 3  # every new blob: the models, manifest, config
    before = layer_digests(image, first.tag)

    changed = names[2]
    version = model_version(client, changed, tmp_path, 5.0)
    second = build(config)
    assert second.built and second.manifest[changed] == version
    after = layer_digests(image, second.tag)
    # Same runtime, same layer count: only the changed model's bucket and the manifest layer
    # are new, and they are all this build uploaded, with its config.
    assert len(after) == len(before)
    new = [d for d in after if d not in before]
    assert len(new) == 2 and new[-1] == after[-1]  # the manifest layer is the last one
    host, repo = image.split("/", 1)
    pushed = requests.get(
        f"http://{host}/v2/{repo}/manifests/{second.tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=5,
    ).json()
    assert sorted(second.uploaded) == sorted([*new, pushed["config"]["digest"]])

    # The pushed image, pulled as production would, serves the new version.
    docker_client.images.pull(image, tag=second.tag)
    _serve_and_check(docker_client, f"{image}:{second.tag}", second.manifest, second.tag, changed)


def test_a_refused_or_unreachable_registry_records_nothing(
    services: Services,
    docker_client: Any,
    names: list[str],
    image_name: Any,
    tmp_path: Path,
    readonly_registry: str,
) -> None:
    client = MlflowClient(services.mlflow_uri)
    for n in names:
        model_version(client, n, tmp_path, 1.0)
    log = ReleaseLog(client)
    before = len(log.all())

    # The registry answers but refuses the push: built, not pushed, not recorded.
    image = image_name(readonly_registry)
    refused = write_release_project(tmp_path / "refused", services, names, image)
    with pytest.raises(ReleaseError, match=r"pushing .*:kit-runtime-.* failed: .*405"):
        build(refused)
    tag = manifest_md5({n: "1" for n in names})
    engine = [t for i in docker_client.images.list() for t in i.tags if t.startswith(image)]
    assert [t.rsplit(":", 1)[1][:12] for t in engine] == ["kit-runtime-"]  # built, not pushed
    assert log.find(tag) is None and len(log.all()) == before

    # Nothing listens at the registry address: refused before building.
    dead = write_release_project(
        tmp_path / "dead", services, names, f"127.0.0.1:{free_port()}/release-test"
    )
    with pytest.raises(ServiceError, match=r"registry .* is unreachable"):
        build(dead)
    assert len(log.all()) == before


def _serve_and_check(
    docker_client: Any, reference: str, manifest: dict[str, str], tag: str, model: str
) -> None:
    """Run the image on the host network (the engine has no bridge here) and call it."""
    port = free_port()
    container = docker_client.containers.run(
        reference, detach=True, network_mode="host", environment={"PORT": str(port)}
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url, container)
        health = requests.get(f"{url}/health", timeout=5).json()  # test_serving checks the rest
        assert (health["status"], health["models"]) == ("ok", len(manifest))
        described = requests.get(f"{url}/manifest", timeout=5).json()
        assert (described["manifest"], described["md5"]) == (manifest, tag)
        answer = requests.post(
            f"{url}/predict/{model}", json={"texts": ["anything", "else"]}, timeout=5
        ).json()
        assert answer["model"] == model and answer["version"] == manifest[model]
        assert [p["label"] for p in answer["predictions"]] == ["yes", "yes"]
        assert 0.5 < answer["predictions"][0]["score"] <= 1.0
        missing = requests.post(f"{url}/predict/nope", json={"texts": []}, timeout=5)
        assert missing.status_code == 404
        bad = requests.post(f"{url}/predict/{model}", json={"text": "x"}, timeout=5)
        assert bad.status_code == 400
        uid = container.exec_run(["python3", "-c", "import os; print(os.getuid())"]).output
        assert uid.strip() == b"10001"
    finally:
        container.remove(force=True)


def _wait(url: str, container: Any) -> None:
    for _ in range(150):
        try:
            requests.get(f"{url}/health", timeout=1)
            return
        except (OSError, requests.ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"the serving container did not answer: {container.logs()[-500:]!r}")
