"""`make demo`'s script, as shipped: both phases of the bundled example, run twice in a row.

test_run_cli.py checks the kit's behaviour on the same story; this runs examples/demo.sh itself,
so the script cannot rot, and a second `make demo` on the same machine (whose registry keeps the
first one's tags) must work as the first did.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import cli, kit_binary

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_make_demo_runs_twice_on_one_machine(tmp_path: Path, docker_client: Any) -> None:
    work = tmp_path / "demo"
    repositories = []
    try:
        for _ in range(2):
            done = subprocess.run(
                ["bash", "examples/demo.sh"],
                cwd=ROOT,
                env={**os.environ, "DEMO_DIR": str(work), "KIT": kit_binary()},
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
            image = re.search(r"(?m)^  image: (\S+)$", (work / "platform.yaml").read_text())
            assert image is not None
            repositories.append(image.group(1))

            first, second = (json.loads((work / f"run{n}.json").read_text()) for n in (1, 2))
            assert len(first["trained"]) == 22 and first["release"]
            trained = re.search(r"(?m)^phase 2 trained 2: (.+)$", done.stdout)
            assert trained is not None, done.stdout[-2000:]
            assert sorted(trained.group(1).split(", ")) == [
                "intent-skylark-air",
                "intent-sunpeak-power",
            ]
            tag1, tag2 = first["release"]["tag"], second["release"]["tag"]
            assert tag1 != tag2
            assert f"phase 2 release {tag2}" in done.stdout
            assert f"release rollback {tag1}" in done.stdout
        assert repositories[0] != repositories[1]
    finally:
        if (work / "platform.yaml").exists():
            cli("--config", str(work / "platform.yaml"), "services", "down", check=False)
        for repository in repositories:  # vfs keeps full copies of every layer
            for image in docker_client.images.list(name=repository):
                for reference in image.tags:
                    docker_client.images.remove(reference, noprune=False)
