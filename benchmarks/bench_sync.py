"""Sync speed: a 100,000-row, 8-column CSV, against `dolt table import -c` of the same file.

    python benchmarks/bench_sync.py [--rows N]

Prints the first sync, a no-change resync and a 10-row edit, each against the import, and
checks that the edit's commit diff is exactly those 10 rows. Goals: first sync <= 1.5x import,
no-change resync <= 10% of the first sync (no commit), 10-row edit <= 15% of the first sync.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from platform_kit import services
from platform_kit.config import load_config
from platform_kit.store import open_store
from platform_kit.sync import sync

COLUMNS = {"id": "string", "customer": "string", "text": "string", "label": "string",
           "score": "float", "count": "int", "active": "bool", "day": "date"}


def write_csv(path: Path, rows: int, edited: set[int] | None = None) -> None:
    rng = random.Random(7)
    words = ["refund", "card", "flight", "baggage", "invoice", "plan", "upgrade", "cancel", "password", "delivery"]
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(list(COLUMNS))
        for i in range(rows):
            text = " ".join(rng.choice(words) for _ in range(8))
            if edited and i in edited:
                text = "edited " + text
            out.writerow([f"r{i:07d}", f"c{i % 500}", text, rng.choice(words), f"{rng.random():.6f}",
                          rng.randint(0, 1000), rng.choice(["true", "false"]),
                          f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"])


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<38} {seconds:8.2f} s", flush=True)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        write_csv(root / "data.csv", args.rows)
        (root / "platform.yaml").write_text(
            "project: bench\ndolt: {database: bench}\nsheets:\n  - name: data\n"
            "    source: {file: data.csv}\n    primary_key: [id]\n"
            f"    columns: {{{', '.join(f'{k}: {v}' for k, v in COLUMNS.items())}}}\n"
        )
        config = load_config(root / "platform.yaml")
        dolt = services.find_dolt()
        print(f"rows: {args.rows:,} x {len(COLUMNS)} columns; dolt {dolt}")

        # The reference: dolt's own CSV import into a fresh repository.
        repo = root / "import"
        repo.mkdir()
        env = {**os.environ, "DOLT_ROOT_PATH": str(root / "home")}
        for key, value in (("user.name", "b"), ("user.email", "b@b"), ("metrics.disabled", "true")):
            subprocess.run([dolt, "config", "--global", "--add", key, value], env=env, check=True,
                           capture_output=True)
        subprocess.run([dolt, "init"], cwd=repo, env=env, check=True, capture_output=True)
        reference, _ = timed("dolt table import -c (reference)", lambda: subprocess.run(
            [dolt, "table", "import", "-c", "--pk", "id", "data", str(root / "data.csv")],
            cwd=repo, env=env, check=True, capture_output=True))

        try:
            services.ensure_services(config)
            store = open_store(config)
            store.create_database()
            first, report = timed("platform-kit sync, first", lambda: sync(config, store, branch="main"))
            assert report.sheets[0].added == args.rows
            head = store.resolve("main")
            again, report = timed("platform-kit sync, no change", lambda: sync(config, store, branch="main"))
            assert report.sheets[0].commit is None and store.resolve("main") == head
            edited = set(random.Random(1).sample(range(args.rows), 10))
            write_csv(root / "data.csv", args.rows, edited)
            edit, report = timed("platform-kit sync, 10 rows edited", lambda: sync(config, store, branch="main"))
            (diff,) = store.diff(head, report.sheets[0].commit)
            assert (len(diff.added), len(diff.modified), len(diff.deleted)) == (0, 10, 0)
            assert {int(c.key[0][1:]) for c in diff.modified} == edited
        finally:
            services.services_down(config)

        print(f"\nfirst sync / dolt import:   {first / reference:5.2f}x   (goal <= 1.5x)")
        print(f"no-change resync / first:   {again / first:5.1%}   (goal <= 10%, no commit: yes)")
        print(f"10-row edit / first:        {edit / first:5.1%}   (goal <= 15%, diff = exactly 10 rows: yes)")


if __name__ == "__main__":
    main()
