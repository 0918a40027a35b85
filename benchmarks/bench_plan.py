"""Planning at scale: 1,000 models, a commit touching 3 customers; `plan` must name exactly those 3.

Sets up a real Dolt database (customers x examples) and a real MLflow server holding one version
per model, tagged as `train` tags it, then commits changes to 3 customers' rows and times
:func:`platform_kit.plan_inputs.plan_training`. Goal (issue 17): <= 1.5 s.

    python benchmarks/bench_plan.py [--small] [--models N] [--rows R]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from platform_kit import services  # noqa: E402
from platform_kit.catalog import expand_models  # noqa: E402
from platform_kit.config import load_config  # noqa: E402
from platform_kit.endpoints import Service  # noqa: E402
from platform_kit.fingerprints import fingerprint  # noqa: E402
from platform_kit.plan_inputs import model_state  # noqa: E402
from platform_kit.project import Project  # noqa: E402
from platform_kit.store import open_store  # noqa: E402
from platform_kit.store.base import ChangeSet, TableSchema  # noqa: E402
from platform_kit.tracking import tags  # noqa: E402
from platform_kit.tracking.mlflow_registry import registry_for  # noqa: E402
from platform_kit.tracking.registry import NO_ALIAS  # noqa: E402

EXAMPLES = TableSchema(
    {"example_id": "string", "customer_id": "string", "text": "string", "label": "string"},
    ("example_id",),
)
CUSTOMERS = TableSchema({"customer_id": "string", "active": "bool"}, ("customer_id",))


def write_project(root: Path, database: str) -> Path:
    body = f"""\
project: bench-plan-{database}
dolt: {{database: {database}}}
mlflow: {{experiment: bench-plan-{database}}}
models:
  - family: intent
    for_each: "SELECT customer_id FROM customers WHERE active"
    name: "intent-{{customer_id}}"
    query: "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s"
    trainer: training.intent:train
    params: {{epochs: 5, lr: 0.02}}
"""
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(body)
    return root / "platform.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="100 models")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=20, help="example rows per customer")
    parser.add_argument("--keep", action="store_true", help="leave the servers running")
    args = parser.parse_args(argv)
    if args.small:
        args.models = 100

    from platform_kit.plan_inputs import plan_training

    root = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    database = f"bench_{uuid.uuid4().hex[:8]}"
    config = load_config(write_project(root, database))
    print(f"project {root}; starting services ...", flush=True)
    Project(config, start_local=True).require(set(Service))
    try:
        store = open_store(config)
        store.create_database()
        customers = [f"c{i:04d}" for i in range(args.models)]
        examples = [
            {
                "example_id": f"{c}-{j:03d}",
                "customer_id": c,
                "text": f"text {j} of {c}",
                "label": f"l{j % 3}",
            }
            for c in customers
            for j in range(args.rows)
        ]
        commit = store.commit_changes(
            "main",
            [
                ChangeSet(
                    "customers",
                    CUSTOMERS,
                    inserts=[{"customer_id": c, "active": True} for c in customers],
                ),
                ChangeSet("examples", EXAMPLES, inserts=examples),
            ],
            "bench data",
        )
        assert commit is not None
        commit = store.resolve("main")

        # One version per model, tagged the way 'train' tags them (no training needed).
        started = time.perf_counter()
        registry = registry_for(config)
        models = expand_models(config, store, commit)
        by_customer: dict[str, list[dict[str, object]]] = {}
        for row in store.query("SELECT customer_id, text, label FROM examples", None, commit):
            by_customer.setdefault(str(row["customer_id"]), []).append(
                {"text": row["text"], "label": row["label"]}
            )
        code_cache: dict[tuple[str, str], str] = {}

        def seed(model_index: int) -> None:
            model = models[model_index]
            rows = by_customer[str(model.query_params["customer_id"])]
            state = model_state(model, config.root, rows, code_cache)
            assert state.fingerprint == fingerprint(rows)
            registry.register(
                model.name,
                None,
                "s3://platform-kit-bench/none",  # never downloaded: planning reads tags only
                {
                    tags.MODEL_NAME: model.name,
                    tags.DOLT_COMMIT: commit,
                    tags.FINGERPRINT: state.fingerprint or "",
                    tags.TRAINER: state.trainer,
                    tags.TRAINER_CODE: state.code,
                    tags.PARAMS_HASH: state.params,
                    tags.QUERY_HASH: model.query_hash(),
                    tags.ROWS: str(len(rows)),
                },
                promote="bench",  # real aliases, as 'train' leaves them
                state=NO_ALIAS,
            )

        model_state(models[0], config.root, [], code_cache)  # fill the cache before threads
        with cf.ThreadPoolExecutor(8) as pool:
            list(pool.map(seed, range(len(models))))
        print(
            f"seeded {len(models)} model versions in MLflow in {time.perf_counter() - started:.1f}s"
        )

        started = time.perf_counter()
        quiet = plan_training(config, store, registry)
        print(
            f"plan with no change: {time.perf_counter() - started:.2f}s, "
            f"{len(quiet.to_train)} to train, {len(quiet.refingerprinted)} re-fingerprinted"
        )

        touched = [customers[7], customers[len(customers) // 2], customers[-1]]
        store.commit_changes(
            "main",
            [
                ChangeSet(
                    "examples",
                    EXAMPLES,
                    updates=[
                        {
                            "example_id": f"{c}-000",
                            "customer_id": c,
                            "text": "changed text",
                            "label": "l0",
                        }
                        for c in touched
                    ],
                )
            ],
            "touch 3 customers",
        )
        started = time.perf_counter()
        plan = plan_training(config, store, registry)
        seconds = time.perf_counter() - started
        named = sorted(d.name for d in plan.to_train)
        expected = sorted(f"intent-{c}" for c in touched)
        ok = named == expected
        print(
            f"plan after touching 3 customers: {seconds:.2f}s, trains {named}, "
            f"re-fingerprinted {len(plan.refingerprinted)}, reasons "
            f"{sorted({d.reason.value for d in plan.to_train})}"
        )
        # What 'release build' reads first when nothing is new: each model's alias version.
        names = [m.name for m in models]
        started = time.perf_counter()
        bulk = registry.productions(names)
        manifest_bulk = time.perf_counter() - started
        started = time.perf_counter()
        with cf.ThreadPoolExecutor(8) as pool:
            one_by_one = list(pool.map(registry.production, names))
        manifest_each = time.perf_counter() - started
        assert [bulk[n] for n in names] == one_by_one and all(one_by_one)
        print(f"\nmodels={len(models)} plan names exactly the 3 touched: {'OK' if ok else 'FAIL'}")
        print(
            f"plan at {len(models)} models with versions and aliases: {seconds:.2f} s (goal <= 1.5 s)"
        )
        print(
            f"release manifest at {len(models)} models: {manifest_bulk:.2f} s "
            f"(report; one call per model, 8 threads: {manifest_each:.2f} s)"
        )
        return 0 if ok else 1
    finally:
        if not args.keep:
            services.services_down(config)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
