"""Start-up: how long people wait for `platform-kit --help` and `platform-kit data log`.

    python benchmarks/bench_startup.py [--runs N]

Each command runs as a fresh process (the console script's interpreter, this checkout first on
the path); the figure is the median wall time of N runs. `data log` reads a local Dolt server
that this script starts and stops. Goals (issue 17): --help <= 0.3 s, data log <= 0.8 s; both
load no mlflow, torch or docker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from platform_kit import services  # noqa: E402
from platform_kit.config import load_config  # noqa: E402
from platform_kit.endpoints import Service  # noqa: E402
from platform_kit.store import open_store  # noqa: E402

PROBE = (
    "import sys\nfrom platform_kit.cli import main\nsys.argv[0] = 'platform-kit'\nsys.exit(main())"
)


def wall(args: list[str], cwd: Path, runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", PROBE, *args], cwd=cwd, env=env, check=True, capture_output=True
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wall_bare(runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heavy_imports(args: list[str], cwd: Path) -> list[str]:
    """The heavy libraries a command loads (it runs once more, under -X importtime)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in out.splitlines()}
    return sorted(loaded & {"mlflow", "torch", "docker", "numpy", "pandas"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp)
        (root / "platform.yaml").write_text(
            "project: bench\ndolt: {database: bench}\n"
            "mlflow: {tracking_uri: 'http://127.0.0.1:9'}\nsheets: []\n"
        )
        config = load_config(root / "platform.yaml")
        services.services_up(config, only=[Service.DOLT])
        try:
            open_store(config).create_database()
            bare = wall_bare(args.runs)
            help_s = wall(["--help"], root, args.runs)
            log_s = wall(["data", "log"], root, args.runs)
            help_heavy = heavy_imports(["--help"], root)
            log_heavy = heavy_imports(["data", "log"], root)
        finally:
            services.services_down(config)
    print(f"python -c pass (reference):       {bare:6.2f} s  (the machine's own start-up)")
    print(f"platform-kit --help:              {help_s:6.2f} s  (goal <= 0.3 s)")
    print(f"platform-kit data log:            {log_s:6.2f} s  (goal <= 0.8 s)")
    print(f"heavy imports (--help, data log): {help_heavy or 'none'}, {log_heavy or 'none'}")


if __name__ == "__main__":
    main()
