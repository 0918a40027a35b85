"""The CLI skeleton: every contract command exists with --help, --json and --verbose."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_kit.cli import build_parser, main

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
