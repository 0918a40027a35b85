"""Release build speed and size: a cold build of 100 (then 1000) adapters, then one model changed,
then ``release build`` with nothing new.

    python benchmarks/bench_release.py [--models N [N ...]] [--small]

Goals (issue 17): the rebuild after one model changed takes <= 15 % of the cold build (at 100
and at 1000 models), ``release build`` with nothing new takes <= 1.5 s at 1000 models, and the
image is <= 400 MB at 100 models. "Cold" means nothing of this release is cached: the runtime
image is built without the engine's cache and pushed to a new repository, every model layer is
written again (``no_cache``); the base image is reused, as a pulled base would be. The build
figures are end to end: resolve the manifest, fetch the models from MLflow, make the layers,
push, record. "Nothing new" is the CLI command, timed as a user waits for it (start-up included).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mysql.connector
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlflow.tracking import MlflowClient

from platform_kit import release, services
from platform_kit.config import load_config
from platform_kit.endpoints import Service
from platform_kit.project import Project
from platform_kit.release.images import Engine
from platform_kit.tracking.client import mlflow_client
from platform_kit.tracking.tags import PROJECT
from training.bow import BowModel

ROOT = Path(__file__).resolve().parents[1]


def adapter(seed: int, labels: int = 8, buckets: int = 4096, dim: int = 32) -> BowModel:
    rng = np.random.default_rng(seed)
    return BowModel(
        labels=[f"intent_{i}" for i in range(labels)],
        buckets=buckets,
        dim=dim,
        ngrams=2,
        embedding=rng.normal(size=(buckets, dim)).astype(np.float32),
        weight=rng.normal(size=(labels, dim)).astype(np.float32),
        bias=rng.normal(size=labels).astype(np.float32),
    )


def customers(project: Project, ids: list[str]) -> None:
    """The table the model family expands over, committed on main."""
    store = project.store
    conn = mysql.connector.connect(
        host=store.host,  # type: ignore[attr-defined]
        port=store.port,  # type: ignore[attr-defined]
        user="root",
        database="bench",
    )
    cur = conn.cursor(buffered=True)  # CALL DOLT_COMMIT answers with a row
    cur.execute("CREATE TABLE customers (customer_id VARCHAR(20) PRIMARY KEY)")
    cur.executemany("INSERT INTO customers VALUES (%s)", [(i,) for i in ids])
    cur.execute("CALL DOLT_COMMIT('-Am', 'customers')")
    conn.close()


def register(client: MlflowClient, experiment: str, name: str, seed: int, tmp: Path) -> None:
    run = client.create_run(experiment)
    adapter(seed).save(tmp / name / str(seed))
    client.log_artifacts(run.info.run_id, str(tmp / name / str(seed)), "model")
    # Tagged with the project as the kit's trainer tags them: the manifest is read in bulk.
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name, tags={PROJECT: "bench"})
    version = client.create_model_version(
        name,
        f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"dolt.commit": "0" * 32, PROJECT: "bench"},
        await_creation_for=0,
    )
    client.set_registered_model_alias(name, "production", version.version)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--models", type=int, nargs="+", default=[100, 1000], help="sizes to run, one after another"
    )
    parser.add_argument("--small", action="store_true", help="10 adapters: a quick check")
    args = parser.parse_args()
    logging.basicConfig(format="  %(message)s")
    logging.getLogger("platform_kit.release").setLevel(logging.INFO)  # phase timings
    for n in [10] if args.small else args.models:
        measure(n)


def measure(models: int) -> None:
    """A cold build of ``models`` adapters, one changed, then nothing new; prints the figures."""
    suffix = uuid.uuid4().hex[:6]
    names = [f"bench-{suffix}-{i:03d}" for i in range(models)]
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp_dir:
        tmp = Path(tmp_dir)
        # One family over a Dolt table, as a project of 1000 customers declares its models.
        (tmp / "platform.yaml").write_text(
            "project: bench\ndolt: {database: bench}\nmodels:\n"
            "  - family: bench\n    for_each: SELECT customer_id FROM customers\n"
            f"    name: 'bench-{suffix}-{{customer_id}}'\n"
            "    query: SELECT 1\n    trainer: training.intent:train\n"
            f"release: {{image: 127.0.0.1:5000/bench-release-{suffix}}}\n"
        )
        config = load_config(tmp / "platform.yaml")
        try:
            project = Project(config, start_local=True)
            project.require(set(Service))
            project.store.create_database()
            customers(project, [n.rsplit("-", 1)[1] for n in names])
            client = mlflow_client(project.mlflow_uri)  # the kit's pool size, set before use
            experiment = client.create_experiment(f"bench-{suffix}")
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda i: register(client, experiment, names[i], i, tmp), range(len(names))
                    )
                )
            release.ensure_base_image(Engine(), "python:3.11-slim")

            start = time.perf_counter()
            backends = {
                "store": project.store,
                "models": project.models,
                "releases": project.releases,
                "registry": project.registry,
                "engine": project.get_engine,
                "tracking_uri": project.mlflow_uri,
            }
            cold = release.build_release(config, **backends, no_cache=True)
            cold_s = time.perf_counter() - start
            register(client, experiment, names[0], 10_000, tmp)  # one model changes
            start = time.perf_counter()
            warm = release.build_release(config, **backends)
            warm_s = time.perf_counter() - start
            size = warm.size / 1e6
            start = time.perf_counter()
            again = release.build_release(config, **backends)
            library_s = time.perf_counter() - start
            assert not again.built and again.tag == warm.tag
            cli_s = nothing_new(tmp / "platform.yaml", warm.tag)
        finally:
            services.services_down(config)
    print(f"models: {models} adapters ({adapter(0).embedding.nbytes / 1e6:.1f} MB of weights each)")
    print(f"cold build + push:            {cold_s:7.1f} s   ({cold.tag})")
    print(
        f"one model changed, rebuild:   {warm_s:7.1f} s   ({warm.tag}, uploaded {len(warm.uploaded)} blobs)"
    )
    print(f"nothing new, library call:    {library_s:7.2f} s")
    n = models
    print(
        f"release rebuild after 1 model changed ÷ cold, {n} models: {warm_s / cold_s:.1%} "
        "(goal ≤ 15 %, at 100 and 1000 models)"
    )
    print(
        f"`release build` with nothing new, {n} models: {cli_s:.2f} s (goal ≤ 1.5 s at 1000 models)"
    )
    print(f"image size, {n} models: {size:.0f} MB (goal ≤ 400 MB at 100 models)")


def nothing_new(path: Path, tag: str) -> float:
    """``platform-kit release build --push`` with nothing new, as a user runs it."""
    command = [
        sys.executable,
        "-c",
        "import sys; from platform_kit.cli import main; sys.exit(main())",
        "release",
        "build",
        "--push",
        "--json",
        "--config",
        str(path),
    ]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(2):  # the first may pay for cold disk caches; the better of two counts
        start = time.perf_counter()
        done = subprocess.run(
            command, cwd=path.parent, env=environment, capture_output=True, text=True, check=False
        )
        times.append(time.perf_counter() - start)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f'"tag": "{tag}"' in done.stdout and '"built": false' in done.stdout, done.stdout
    print(f"nothing new, CLI runs:        {times[0]:7.2f} s, {times[1]:.2f} s")
    return min(times)


if __name__ == "__main__":
    main()
