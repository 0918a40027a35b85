"""A runner's install from the lock, with a warm cache: the install-kit action's own script.

Runs the action's install step (``.github/actions/install-kit/action.yml``) as a GPU runner
(``PLATFORM_KIT_TORCH=cuda``, ``requirements.lock``): once to warm uv's and pip's caches (the
first run downloads PyTorch when the cache is cold), then timed into a fresh virtualenv, and
again into the same one (a runner's next job). Goal: a warm install under 30 s.

    python benchmarks/bench_install.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / ".github" / "actions" / "install-kit" / "action.yml"


def install(venv: Path) -> float:
    script = yaml.safe_load(ACTION.read_text())["runs"]["steps"][0]["run"]
    env = {**os.environ, "PLATFORM_KIT_VENV": str(venv), "PLATFORM_KIT_TORCH": "cuda"}
    started = time.perf_counter()
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-install-") as scratch:
        warmup = install(Path(scratch) / "warm")
        fresh = install(Path(scratch) / "fresh")
        again = install(Path(scratch) / "fresh")
    print(f"first install (cache as found): {warmup:6.1f} s")
    print(f"warm install, fresh venv:       {fresh:6.1f} s  (goal < 30 s)")
    print(f"warm install, same venv:        {again:6.1f} s  (goal < 30 s)")
    return 0 if max(fresh, again) < 30 else 1


if __name__ == "__main__":
    sys.exit(main())
