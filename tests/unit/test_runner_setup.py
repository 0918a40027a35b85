"""infra/runner/setup-runner.sh lays out one runner per GPU with its own GPU and virtualenv."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def setup(tmp_path: Path, *extra: str, gpus: str = "0") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "bash",
            str(ROOT / "infra/runner/setup-runner.sh"),
            "--no-register",
            "--gpus",
            gpus,
            "--cpu-runners",
            "1",
            "--root",
            str(tmp_path / "runners"),
            "--etc",
            str(tmp_path / "etc"),
            "--systemd-dir",
            str(tmp_path),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_one_runner_per_gpu_with_its_own_device_and_virtualenv(tmp_path: Path) -> None:
    result = setup(tmp_path, gpus="0,1")
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


def test_gpu_runners_have_no_docker_and_cpu_runners_do(tmp_path: Path) -> None:
    result = setup(tmp_path, "--gpu-user", "trainer", "--cpu-user", "releaser")
    assert result.returncode == 0, result.stderr
    for name, account in (("gpu-0", "trainer"), ("cpu-0", "releaser")):
        drop_in = tmp_path / f"platform-kit-runner@{name}.service.d" / "account.conf"
        assert f"User={account}" in drop_in.read_text().splitlines()
    script = (ROOT / "infra/runner/setup-runner.sh").read_text()
    assert 'usermod -aG docker "$CPU_USER"' in script
    assert 'gpasswd -d "$GPU_USER" docker' in script
    same = setup(tmp_path, "--gpu-user", "one", "--cpu-user", "one")
    assert same.returncode != 0 and "must differ" in same.stderr


def test_runner_tarball_is_checked_against_its_sha256(tmp_path: Path) -> None:
    tarball = tmp_path / "actions-runner.tar.gz"
    tarball.write_bytes(b"not the runner GitHub published")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    good = setup(tmp_path, "--runner-tarball", str(tarball), "--runner-sha256", digest)
    assert good.returncode == 0, good.stderr
    assert "verified" in good.stderr
    bad = setup(tmp_path, "--runner-tarball", str(tarball), "--runner-sha256", "0" * 64)
    assert bad.returncode != 0 and "does not match SHA-256" in bad.stderr
    assert tarball.exists()  # a file the operator gave is never deleted
    # The default version's published checksum is built in; an unknown version needs one.
    unknown = setup(tmp_path, "--runner-tarball", str(tarball), "--runner-version", "9.9.9")
    assert unknown.returncode != 0 and "--runner-sha256" in unknown.stderr


def test_ephemeral_runners_get_a_fresh_config_per_job(tmp_path: Path) -> None:
    result = setup(tmp_path, "--ephemeral", "--runner-group-id", "7")
    assert result.returncode == 0, result.stderr
    unit = (tmp_path / "platform-kit-runner-jit@.service").read_text()
    runners = tmp_path / "runners"
    assert f"ExecStartPre=+{runners}/jit-config.sh %i" in unit
    assert "Restart=always" in unit
    # The one-job configuration reaches the runner through its environment, never argv.
    assert "ACTIONS_RUNNER_INPUT_JITCONFIG" in unit and "--jitconfig" not in unit
    assert not (tmp_path / "platform-kit-runner@.service").exists()
    assert (runners / "jit-config.sh").stat().st_mode & 0o111
    jit_env = (tmp_path / "etc" / "jit.env").read_text()
    assert "RUNNER_GROUP_ID=7" in jit_env
    assert "just-in-time" in result.stderr


class _GitHub(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, self.headers.get("Authorization", ""), body))
        answer = json.dumps({"encoded_jit_config": "one-job-config", "runner": {"id": 1}})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_jit_config_asks_github_and_hands_over_one_job(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        etc, runner = tmp_path / "etc", tmp_path / "runners" / "cpu-0"
        (runner / "_work" / "old-job").mkdir(parents=True)
        etc.mkdir()
        (etc / "jit-token").write_text("admin-token-123\n")
        (etc / "jit.env").write_text(
            f"GITHUB_API_URL=http://127.0.0.1:{server.server_address[1]}\n"
            "RUNNER_SCOPE=repos/octo/platform\nRUNNER_GROUP_ID=3\n"
            f"RUNNER_ROOT={tmp_path / 'runners'}\n"
        )
        done = subprocess.run(
            ["bash", str(ROOT / "infra/runner/jit-config.sh"), "cpu-0"],
            env={**os.environ, "PLATFORM_KIT_ETC": str(etc)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    path, authorization, body = _GitHub.seen[-1]
    assert path == "/repos/octo/platform/actions/runners/generate-jitconfig"
    assert authorization == "Bearer admin-token-123"
    assert body["runner_group_id"] == 3
    assert body["labels"] == ["self-hosted", "linux", "cpu"]
    assert (runner / ".jitconfig").read_text().strip() == "one-job-config"
    assert (runner / ".jitconfig").stat().st_mode & 0o077 == 0
    assert not (runner / "_work").exists()  # the previous job's workspace is gone
    assert "admin-token-123" not in done.stderr + done.stdout


def test_readme_says_private_repositories_only() -> None:
    readme = (ROOT / "infra/runner/README.md").read_text()
    assert "Private repositories only" in readme
    assert "restricted_to_workflows=true" in readme and "@refs/heads/main" in readme
