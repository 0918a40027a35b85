"""Run the installed ``platform-kit`` console script as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def kit_binary() -> str:
    beside = Path(sys.executable).parent / "platform-kit"
    found = str(beside) if beside.exists() else shutil.which("platform-kit")
    if not found:
        pytest.fail("the platform-kit console script is not installed (run 'make venv')")
    return found


def cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``platform-kit ARGS``; with check, a non-zero exit fails the test with its stderr."""
    result = subprocess.run(
        [kit_binary(), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"platform-kit {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}"
        )
    return result


def cli_json(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900
) -> Any:
    return json.loads(cli(*args, "--json", cwd=cwd, env=env, timeout=timeout).stdout)
