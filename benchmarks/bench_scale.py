"""The whole job at scale: `platform-kit run` with 1,000 models, end to end, stage by stage.

    python benchmarks/bench_scale.py [--models N] [--examples K]

One adapter per active customer (the bundled example's family), on local Dolt, MLflow and the
registry at 127.0.0.1:5000. Three runs, as a team sees them: the first run (everything trains
and is released), a run after 3 customers' rows changed (3 models train, one release), and a
run with no change (nothing to do). Each prints its wall time and where it went:

    sync, merge, plan, train, release

Goals (issue 17): 3 edited customers <= 20 s, no change <= 3 s; the first run is reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from platform_kit import services  # noqa: E402
from platform_kit.config import load_config  # noqa: E402
from platform_kit.pipeline import RunReport, run_pipeline  # noqa: E402
from platform_kit.project import Project  # noqa: E402

INTENTS = {
    "refund": ["refund my order {n}", "money back for order {n}", "I want a refund on {n}"],
    "shipping": ["where is parcel {n}", "track my delivery {n}", "when does {n} arrive"],
    "account": ["reset my password {n}", "cannot log in account {n}", "change my email {n}"],
}


def write_project(root: Path, models: int, examples: int, edited: set[int]) -> Path:
    suffix = uuid.uuid4().hex[:8]
    (root / "sheets").mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(
        f"project: bench-scale-{suffix}\n"
        f"dolt: {{database: scale_{suffix}}}\n"
        f"mlflow: {{experiment: bench-scale-{suffix}}}\n"
        "sheets:\n"
        "  - name: customers\n    source: {file: sheets/customers.csv}\n"
        "    primary_key: [customer_id]\n"
        "    columns: {customer_id: string, active: bool}\n"
        "  - name: examples\n    source: {file: sheets/examples.csv}\n"
        "    primary_key: [example_id]\n"
        "    columns: {example_id: string, customer_id: string, text: string, label: string}\n"
        "models:\n  - family: intent\n"
        '    for_each: "SELECT customer_id FROM customers WHERE active"\n'
        '    name: "intent-{customer_id}"\n'
        '    query: "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s '
        'ORDER BY example_id"\n'
        "    trainer: training.intent:train\n"
        "    params: {epochs: 3, lr: 0.05, batch_size: 32, dim: 16, buckets: 1024, ngrams: 1,"
        " seed: 7}\n"
        f"release: {{image: 127.0.0.1:5000/bench-scale-{suffix}, base_image: python:3.11-slim,"
        " alias: production}\n"
    )
    write_sheets(root, models, examples, edited)
    return root / "platform.yaml"


def write_sheets(root: Path, models: int, examples: int, edited: set[int]) -> None:
    with (root / "sheets" / "customers.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["customer_id", "active"])
        out.writerows([f"c{i:04d}", "true"] for i in range(models))
    with (root / "sheets" / "examples.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["example_id", "customer_id", "text", "label"])
        labels = sorted(INTENTS)
        for i in range(models):
            for j in range(examples):
                label = labels[j % len(labels)]
                template = INTENTS[label][(j // len(labels)) % len(INTENTS[label])]
                text = template.format(n=j * 7 + i)
                if i in edited and j == 0:
                    text += " please, it is urgent"  # the analyst's edit
                out.writerow([f"c{i:04d}-{j:03d}", f"c{i:04d}", text, label])


def timed_run(project: Project, label: str) -> tuple[float, dict[str, float], RunReport]:
    first: dict[str, float] = {}
    last: dict[str, float] = {}

    def say(stage: str, line: str) -> None:
        now = time.perf_counter()
        first.setdefault(stage, now)
        last[stage] = now

    start = time.perf_counter()
    report = run_pipeline(project, workers=2, say=say)
    end = time.perf_counter()
    # sync and merge speak as they start (merge again per merged sheet); plan, train and release
    # speak when they are done.
    sync_start = first.get("sync", start)
    merge_start = first.get("merge", sync_start)
    merge_end = max(last.get(s, merge_start) for s in ("merge", "diff", "push"))
    plan_end = first.get("plan", merge_end)
    train_end = first.get("train", plan_end)
    stages = {
        "sync": merge_start - sync_start,
        "merge": merge_end - merge_start,
        "plan": plan_end - merge_end,
        "train": train_end - plan_end,
        "release": end - train_end,
    }
    print(
        f"{label:<34} {end - start:7.1f} s   "
        + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
        + f"   (trained {len(report.trained)})",
        flush=True,
    )
    return end - start, stages, report


def release_build_nothing_new(root: Path) -> float:
    """`platform-kit release build --push` as a person types it, with every model released."""
    cli = Path(sys.executable).with_name("platform-kit")
    start = time.perf_counter()
    done = subprocess.run(
        [str(cli), "release", "build", "--push", "--json"], cwd=root, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-500:]
    assert json.loads(done.stdout)["built"] is False, done.stdout[-500:]
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000, help="at least 4")
    parser.add_argument("--examples", type=int, default=24, help="example rows per customer")
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    config = load_config(write_project(root, args.models, args.examples, set()))
    project = Project(config, start_local=True)
    print(f"project {root}: {args.models} models x {args.examples} examples", flush=True)
    try:
        first, _, report = timed_run(project, "run, first")
        assert len(report.trained) == args.models and report.release, "the first run fell short"
        edited = {1, args.models // 2, args.models - 1}  # 3 customers from 4 models on
        write_sheets(root, args.models, args.examples, edited)
        changed, stages, report = timed_run(project, "run, 3 customers edited")
        assert sorted(report.trained) == sorted(f"intent-c{i:04d}" for i in edited), report.trained
        quiet, _, report = timed_run(project, "run, no change")
        assert not report.trained and report.nothing_new, "a run with no change did something"
        idle = release_build_nothing_new(root)
    finally:
        services.services_down(config)
        shutil.rmtree(root, ignore_errors=True)
    n = args.models
    print(f"\nrun at {n} models, first: {first:.1f} s (report)")
    print(f"run at {n} models after 3 customers changed: {changed:.1f} s (goal <= 20 s)")
    print(f"run at {n} models with no change: {quiet:.1f} s (goal <= 3 s)")
    print(
        f"stages of the 3-edit run at {n} models: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
        + " (report)"
    )
    print(f"release build with nothing new at {n} models: {idle:.2f} s (goal <= 1.5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
