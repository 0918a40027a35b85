"""Training overhead: `platform-kit train` against a plain PyTorch loop on the same models.

Workload: N intent adapters (default 100) of about R rows each (default 2,000) in a real Dolt
database, trained with W workers (default 2). The plain loop trains the same models, with the same
trainer, workers and epochs, from rows in memory, with no Dolt, no MLflow and no kit. Goal (issue
17): kit <= 1.15x plain, in wall time and in CPU time; the kit's CPU counts its own process, its
workers and the MLflow server (the Dolt server's is shown beside), the plain loop's its workers.

Then the same for L of those adapters (default 40) trained for about a CPU-second each (25
epochs): the kit's cost per model is fixed, so its share falls as training grows.

Last, the N adapters again with no epochs at all, so that training hardly competes with the kit
for the cores: what the kit then spends per model is its bookkeeping alone (MLflow's records, the
row read, the fingerprint), and 1 + that / the plain loop's CPU per model is the least ratio the
first comparison can reach with these records.

    python benchmarks/bench_train.py [--small] [--models N] [--rows R] [--workers W] [--epochs E]
                                     [--large-models L] [--large-epochs E2] [--no-floor]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


GOAL = 1.15  # issue 17: kit <= 1.15x the plain loop, wall and CPU
DEFAULT_EPOCHS = 5

INTENTS = {
    "billing": "invoice charge refund payment card bill receipt overcharged price",
    "shipping": "package deliver track late arrive parcel courier address shipment",
    "account": "password login reset email username profile locked sign verify",
    "cancel": "cancel subscription stop end terminate plan close membership quit",
    "support": "broken error crash bug fails slow issue problem fix",
}
FILLER = [
    "please",
    "help",
    "me",
    "with",
    "my",
    "the",
    "a",
    "i",
    "need",
    "to",
    "can",
    "you",
    "it",
    "is",
    "not",
    "this",
]


def make_rows(customer: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.choice(sorted(INTENTS))
        vocab = INTENTS[label].split()
        words = [
            rng.choice(vocab if rng.random() < 0.35 else FILLER) for _ in range(rng.randint(6, 14))
        ]
        rows.append(
            {
                "example_id": f"{customer}-{i:05d}",
                "customer_id": customer,
                "text": " ".join(words),
                "label": label,
            }
        )
    return rows


def write_project(
    root: Path,
    database: str,
    params: Mapping[str, Any],
    family: str = "intent",
    promote_min: float = 0.6,
) -> Path:
    body = f"""\
project: bench-train-{database}
dolt: {{database: {database}}}
mlflow: {{experiment: bench-train-{database}}}
models:
  - family: {family}
    for_each: "SELECT customer_id FROM customers WHERE active"
    name: "{family}-{{customer_id}}"
    query: "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s"
    trainer: training.intent:train
    params: {dict(params)!r}
    promote_if: {{metric: accuracy, min: {promote_min}}}
"""
    root.mkdir(parents=True, exist_ok=True)
    path = root / ("platform.yaml" if family == "intent" else f"{family}.yaml")
    path.write_text(body.replace("'", '"'))
    return path


# ---------------------------------------------------------------------------- the plain loop


def _init() -> None:
    import torch

    torch.set_num_threads(1)


def _plain_one(args: tuple[list[dict[str, Any]], dict[str, Any], str]) -> dict[str, float]:
    from training.intent import train

    rows, params, out = args
    return train(rows, params, Path(out))


def plain_loop(
    data: Mapping[str, list[dict[str, Any]]], params: dict[str, Any], workers: int
) -> float:
    out = Path(tempfile.mkdtemp(prefix="bench-plain-"))
    started = time.perf_counter()
    with cf.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init
    ) as pool:
        jobs = [
            ([{"text": r["text"], "label": r["label"]} for r in rows], params, str(out / name))
            for name, rows in data.items()
        ]
        list(pool.map(_plain_one, jobs))
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return seconds


# ---------------------------------------------------------------------------- CPU accounting


def _tree_cpu(pid: int) -> float:
    """CPU seconds used by a process and its descendants (Linux /proc)."""
    import os

    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        stack.extend(children.get(current, []))
    return total


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the worker pools)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu(config: Any) -> dict[str, float]:
    import json
    import resource

    state = json.loads((config.state_dir / "services.json").read_text())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "kit process": usage.ru_utime + usage.ru_stime,
        "mlflow server": _tree_cpu(int(state["mlflow"]["pid"])),
        "dolt server": _tree_cpu(int(state["dolt"]["pid"])),
    }


# ---------------------------------------------------------------------------- one comparison


class Comparison(NamedTuple):
    failed: int  # models that failed in the kit
    extra_ms: float  # the kit's CPU per model beyond the plain loop
    plain_ms: float  # the plain loop's CPU per model


def compare(
    args: argparse.Namespace,
    config: Any,
    store: Any,
    data: Mapping[str, list[dict[str, Any]]],
    params: dict[str, Any],
    *,
    rerun: bool,
    goal: bool = True,
) -> Comparison:
    """Train ``data``'s models with the plain loop, the kit, and the plain loop again; print the
    ratios (against the goal when ``goal``) and where the kit's extra CPU goes."""
    from platform_kit.tracking.mlflow_registry import registry_for
    from platform_kit.train import ModelStatus, train

    def plain_run() -> tuple[float, float]:
        children = _children_cpu()
        seconds = plain_loop(data, params, args.workers)
        cpu = _children_cpu() - children
        print(f"plain PyTorch loop: {seconds:.1f}s ({cpu:.1f} CPU-s in workers)", flush=True)
        return seconds, cpu

    first = plain_run()

    before, children = _cpu(config), _children_cpu()
    report = train(config, store, registry_for(config), names=list(data), workers=args.workers)
    kit = report.seconds
    kit_workers = _children_cpu() - children
    after = _cpu(config)
    spent = {k: after[k] - before[k] for k in after}
    kit_cpu = kit_workers + spent["kit process"] + spent["mlflow server"]
    failed = report.failed
    print(
        f"platform-kit train: {kit:.1f}s ({report.count(ModelStatus.TRAINED)} trained, "
        f"{sum(r.promoted for r in report.results)} promoted, {len(failed)} failed)",
        flush=True,
    )
    print(
        f"  CPU seconds: workers {kit_workers:.1f}, "
        + ", ".join(f"{k} {v:.1f}" for k, v in spent.items())
    )
    if failed:
        print(f"  first failure: {failed[0].name}: {failed[0].reason}")
    if rerun:
        started = time.perf_counter()
        again = train(config, store, registry_for(config), names=list(data), workers=args.workers)
        print(
            f"rerun (all skipped): {time.perf_counter() - started:.1f}s "
            f"({again.count(ModelStatus.SKIPPED)} skipped)"
        )
    # The plain loop runs before and after the kit: a load change on a shared machine then
    # weighs on both sides of the ratio.
    second = plain_run()
    plain, plain_cpu = (first[0] + second[0]) / 2, (first[1] + second[1]) / 2
    wall_ratio, cpu_ratio = kit / plain, kit_cpu / plain_cpu
    models, epochs = len(data), params["epochs"]
    figure = f"train, {models} adapters, {args.workers} workers / plain PyTorch loop"
    if epochs != DEFAULT_EPOCHS:  # the figure keeps its name; others say their size
        figure = (
            f"train, {models} adapters of {epochs} epochs ({plain_cpu / models:.2f} CPU-s each), "
            f"{args.workers} workers / plain PyTorch loop"
        )
    per_model = (kit_cpu - plain_cpu) / models * 1000
    split = (
        f"MLflow server {spent['mlflow server'] / models * 1000:.0f} ms, kit process "
        f"{spent['kit process'] / models * 1000:.0f} ms, workers beyond the plain loop "
        f"{(kit_workers - plain_cpu) / models * 1000:.0f} ms"
    )
    ratios = (
        f"{figure}, wall: {wall_ratio:.2f}x (goal <= {GOAL}x)\n"
        f"{figure}, CPU: {cpu_ratio:.2f}x (goal <= {GOAL}x)\n"
        if goal
        else ""
    )
    print(
        f"\nmodels={models} rows={args.rows} workers={args.workers} epochs={epochs}\n"
        f"plain (mean of two)={plain:.2f}s kit={kit:.2f}s; CPU plain={plain_cpu:.1f}s "
        f"kit={kit_cpu:.1f}s\n"
        f"{ratios}"
        f"CPU the kit spends per model beyond the plain loop, {models} adapters of {epochs} "
        f"epochs: {per_model:.0f} ms (report)\n"
        f"where that CPU goes, {models} adapters of {epochs} epochs: {split} (report)\n",
        flush=True,
    )
    return Comparison(len(failed), per_model, plain_cpu / models * 1000)


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="10 models x 300 rows, then 4 of 10 epochs"
    )
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument(
        "--large-models", type=int, default=40, help="then this many adapters again (0: not)"
    )
    parser.add_argument(
        "--large-epochs", type=int, default=25, help="trained this long: about 1 CPU-s each"
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the last comparison, of bookkeeping alone (no epochs)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the servers running")
    args = parser.parse_args(argv)
    if args.small:
        args.models, args.rows, args.large_models, args.large_epochs = 10, 300, 4, 10
    params = {"epochs": args.epochs, "lr": 0.02, "seed": 0}

    # Imported here, not at the top: spawned workers (the plain loop's and the kit's) import
    # this file again, and a worker of `platform-kit train` imports no MLflow or services.
    from platform_kit import services
    from platform_kit.config import load_config
    from platform_kit.endpoints import Service
    from platform_kit.project import Project
    from platform_kit.store import open_store
    from platform_kit.store.base import ChangeSet, TableSchema

    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    database = f"bench_{uuid.uuid4().hex[:8]}"
    config = load_config(write_project(root, database, params))
    print(f"project {root}; starting services ...", flush=True)
    Project(config, start_local=True).require(set(Service))
    try:
        store = open_store(config)
        store.create_database()
        customers = [f"c{i:04d}" for i in range(args.models)]
        data = {f"intent-{c}": make_rows(c, args.rows, i) for i, c in enumerate(customers)}
        started = time.perf_counter()
        examples = TableSchema(
            {"example_id": "string", "customer_id": "string", "text": "string", "label": "string"},
            ("example_id",),
        )
        store.commit_changes(
            "main",
            [
                ChangeSet(
                    "customers",
                    TableSchema({"customer_id": "string", "active": "bool"}, ("customer_id",)),
                    inserts=[{"customer_id": c, "active": True} for c in customers],
                )
            ],
            "bench customers",
        )
        # A few thousand rows per commit: like sheet syncs, and kind to the server's memory.
        names = list(data)
        per_commit = max(1, 4000 // max(args.rows, 1))
        for start in range(0, len(names), per_commit):
            chunk = [r for name in names[start : start + per_commit] for r in data[name]]
            store.commit_changes("main", [ChangeSet("examples", examples, inserts=chunk)], "bench")
        print(
            f"loaded {args.models} customers x {args.rows} rows into Dolt in "
            f"{time.perf_counter() - started:.1f}s",
            flush=True,
        )

        first = compare(args, config, store, data, params, rerun=True)
        failed = first.failed
        if args.large_models:
            # The same kit on adapters that train for about a second each: its bookkeeping is a
            # fixed cost per model, so its share shrinks as training grows.
            large = {**params, "epochs": args.large_epochs}
            # Models of their own, recorded for the first time like the first comparison's.
            large_config = load_config(write_project(root, database, large, "large"))
            subset = {
                name.replace("intent-", "large-", 1): rows
                for name, rows in list(data.items())[: args.large_models]
            }
            failed += compare(args, large_config, store, subset, large, rerun=False).failed
        if args.floor:
            # Every model promoted, as in the first comparison (see its line), so the records
            # are the same.
            bare = {**params, "epochs": 0}
            bare_config = load_config(write_project(root, database, bare, "bare", promote_min=0))
            renamed = {name.replace("intent-", "bare-", 1): rows for name, rows in data.items()}
            floor = compare(args, bare_config, store, renamed, bare, rerun=False, goal=False)
            failed += floor.failed
            print(
                f"least train ratio the bookkeeping allows, {args.models} adapters of "
                f"{args.epochs} epochs: {1 + floor.extra_ms / first.plain_ms:.2f}x "
                f"({floor.extra_ms:.0f} ms per model on cores training hardly uses, over "
                f"{first.plain_ms:.0f} ms of plain training) (report)",
                flush=True,
            )
        return 0 if not failed else 1
    finally:
        if not args.keep:
            services.services_down(config)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
