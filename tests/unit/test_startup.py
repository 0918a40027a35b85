"""Start-up cost: the CLI's parser and --help load no heavy library (issue 17).

Checked in a fresh interpreter, since this test process has mlflow and torch loaded already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Each costs from 0.1 s (numpy, PyGithub) to over a second (mlflow, torch) at start-up.
HEAVY = ("mlflow", "torch", "docker", "numpy", "pandas", "github", "mysql")

PROBE = """
import json, sys
import platform_kit.cli
platform_kit.cli.build_parser()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_building_the_parser_imports_no_heavy_library() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert not loaded & set(HEAVY), f"the CLI's start-up imports {sorted(loaded & set(HEAVY))}"


def test_help_prints_without_heavy_imports() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['platform-kit', '--help']\n"
        "try:\n"
        "    from platform_kit.cli import main\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED', sorted(set({HEAVY!r}) & {{n.split('.')[0] for n in sys.modules}}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "usage: platform-kit" in out
    assert "LOADED []" in out
