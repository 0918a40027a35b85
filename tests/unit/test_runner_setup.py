"""infra/runner/setup-runner.sh lays out one runner per GPU with its own GPU and virtualenv."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_runner_per_gpu_with_its_own_device_and_virtualenv(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            "bash",
            str(ROOT / "infra/runner/setup-runner.sh"),
            "--no-register",
            "--gpus",
            "0,1",
            "--cpu-runners",
            "1",
            "--root",
            str(tmp_path / "runners"),
            "--etc",
            str(tmp_path / "etc"),
            "--systemd-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    runners = tmp_path / "runners"
    assert sorted(p.name for p in runners.iterdir()) == ["cpu-0", "gpu-0", "gpu-1"]
    for name, devices in (("gpu-0", "0"), ("gpu-1", "1"), ("cpu-0", "")):
        env = dict(
            line.split("=", 1) for line in (runners / name / ".env").read_text().splitlines()
        )
        assert env["CUDA_VISIBLE_DEVICES"] == devices
        assert env["PLATFORM_KIT_VENV"] == str(runners / name / "venv")
        assert (runners / name / ".path").read_text().startswith(f"{runners / name}/venv/bin:")
    assert "labels self-hosted,linux,gpu" in result.stderr
    assert "labels self-hosted,linux,cpu" in result.stderr
    unit = (tmp_path / "platform-kit-runner@.service").read_text()
    assert f"EnvironmentFile={tmp_path / 'etc'}/runner-%i.env" in unit
    assert f"ExecStart={runners}/%i/run.sh" in unit
    assert "@" not in unit.split("[Service]")[1].replace("%i", "")  # every placeholder filled
