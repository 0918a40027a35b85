"""The CLI skeleton: every contract command exists with --help, --json and --verbose."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from platform_kit import cli
from platform_kit.cli import EXIT_BROKEN_PIPE, EXIT_INTERNAL_ERROR, build_parser, init, main

COMMANDS = [
    ["init"],
    ["services", "up"],
    ["sync"],
    ["data", "diff"],
    ["data", "merge", "b"],
    ["data", "log"],
    ["plan"],
    ["train"],
    ["run"],
    ["release", "build"],
    ["release", "list"],
    ["release", "diff", "a", "b"],
    ["release", "rollback", "t"],
    ["model", "list"],
    ["model", "promote", "m", "1"],
    ["model", "rollback", "m"],
    ["lineage", "x"],
    ["github", "dispatch", "w.yml"],
    ["github", "watch"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a))
def test_every_command_has_help_json_and_verbose(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    groups = ("data", "release", "model", "github", "services")
    command = argv[:2] if argv[0] in groups else argv[:1]
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ("--config", "--json", "--verbose"):
        assert flag in help_text
    args = build_parser().parse_args([*argv, "--json", "--verbose"])
    assert args.json and args.verbose


def test_global_flags_before_or_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["--json", "data", "log"]).json
    assert parser.parse_args(["data", "log", "--json"]).json


def test_expected_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(tmp_path / "missing.yaml"), "services", "status"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "missing.yaml: no such file" in err
    assert len(err.splitlines()) == 1


def test_verbose_adds_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--config", str(tmp_path / "missing.yaml"), "services", "status", "--verbose"])
    assert "Traceback" in capsys.readouterr().err


def test_secrets_are_redacted_from_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_canary_secret_value")
    bad = tmp_path / "platform.yaml"
    bad.write_text("project: ghp_canary_secret_value\nbogus: 1\n")
    assert main(["--config", str(bad), "services", "status"]) == 2
    captured = capsys.readouterr()
    assert "ghp_canary_secret_value" not in captured.err + captured.out


def _failing_handler(exc: BaseException) -> Any:
    def handler(args: Any) -> int:
        raise exc

    return handler


def test_an_unexpected_error_is_one_redacted_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOLT_PASSWORD", "dolt-canary-pw-77")
    bug = KeyError("connect with dolt-canary-pw-77\nthen fail")
    monkeypatch.setattr(init, "run", _failing_handler(bug))
    assert main(["init"]) == EXIT_INTERNAL_ERROR == 70
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: internal error: KeyError:") and "--verbose" in err
    assert "dolt-canary-pw-77" not in err and "***" in err

    assert main(["init", "--verbose"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "dolt-canary-pw-77" not in err


def test_a_closed_pipe_exits_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(init, "run", _failing_handler(BrokenPipeError()))
    monkeypatch.setattr(cli, "_silence_stdout", lambda: None)  # pytest's capture has no fd
    assert main(["init"]) == EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


def test_output_into_a_closed_pipe_ends_quietly_in_a_real_process() -> None:
    """``platform-kit ... | head -1``: the reader goes away while the command still writes."""
    script = textwrap.dedent(
        """
        import sys
        from platform_kit.cli import init, main

        def flood(args):
            for i in range(200_000):
                print("line", i)
            return 0

        init.run = flood
        sys.exit(main(["init"]))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"line 0\n"
    process.stdout.close()  # the reader is gone
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert err == ""
