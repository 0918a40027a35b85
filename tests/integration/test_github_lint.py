"""actionlint and zizmor (auditor persona, its strictest) find nothing in .github/ (make lint-workflows runs the same)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
CACHE_BIN = (
    Path(os.environ.get("PLATFORM_KIT_CACHE") or Path.home() / ".cache/platform-kit") / "bin"
)


def tool(name: str, install: str) -> str:
    for candidate in (CACHE_BIN / name, Path(sys.executable).parent / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        require(name, f"not installed ({install})")
    assert found is not None
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_actionlint_finds_nothing() -> None:
    result = run(tool("actionlint", "bash infra/install-actionlint.sh"), "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_zizmor_finds_nothing() -> None:
    result = run(
        tool("zizmor", "pip install zizmor"),
        "--offline",
        "--persona=auditor",
        "--no-progress",
        ".github",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
