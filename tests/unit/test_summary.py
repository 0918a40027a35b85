"""Job summary Markdown, workflow commands (annotations, groups), and the Mermaid lineage text."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from platform_kit import retry, summary
from platform_kit.cli.common import Stages, annotate
from platform_kit.errors import ValidationError
from platform_kit.lineage import Lineage, SheetSync, VersionLineage, mermaid
from platform_kit.workflow_commands import annotation
from tests.conftest import require

PARSER = Path(__file__).resolve().parents[2] / "infra" / "mermaid" / "parse.mjs"


def test_summaries_go_to_the_file_asked_for_and_to_the_step_summary_in_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own, step = tmp_path / "own.md", tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    assert summary.targets(None) == []  # not in Actions: the variable alone is not enough
    assert summary.write("# a", str(own)) == [own]
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("DOLT_PASSWORD", "hunter2-secret")
    assert summary.write("# b hunter2-secret", str(own)) == [own, step]
    assert own.read_text() == "# a\n\n# b ***\n\n"  # appended, secrets redacted
    assert step.read_text() == "# b ***\n\n"


def test_a_summary_dir_keeps_a_copy_of_each_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATFORM_KIT_SUMMARY_DIR", str(tmp_path / "kept"))
    monkeypatch.setenv("GITHUB_JOB", "train")
    summary.write("# one", None)
    summary.write("# two", None)
    kept = sorted((tmp_path / "kept").iterdir())
    assert [p.name.split("-")[0] for p in kept] == ["train", "train"]
    assert sorted(p.read_text() for p in kept) == ["# one\n\n", "# two\n\n"]


def test_table_cells_stay_one_cell() -> None:
    text = summary.table(["a", "b"], [["x|y", "line\nbreak"], [None, "z" * 300]])
    rows = text.splitlines()
    assert rows[2] == "| x\\|y | line break |"
    assert rows[3].startswith("|  | zzz") and rows[3].endswith("... |")


def test_links_only_for_an_http_tracking_server() -> None:
    assert summary.Links("file:///tmp/mlruns").run("abc") == ""
    links = summary.Links("https://mlflow.example.com/")
    assert links.run("abc") == "https://mlflow.example.com/#/runs/abc"
    assert links.version("a/b c", 3) == "https://mlflow.example.com/#/models/a%2Fb%20c/versions/3"
    assert links.version("m", None) == ""


def test_deploy_and_rollback_name_from_and_to() -> None:
    text = summary.deploy("img:old", "img:new", target="img:production")
    assert text.splitlines()[0] == "## deploy of `img:production`"
    assert "| from | `img:old` |" in text and "| to | `img:new` |" in text
    rolled = summary.rollback(
        {"reference": "img:t1", "production": "img:production", "previous_digest": "sha256:9"}
    )
    assert rolled.startswith("## rollback of `img:production`") and "`sha256:9`" in rolled


def test_release_diff_lists_added_changed_and_removed_models() -> None:
    text = summary.release(
        {"tag": "t2", "image": "img", "manifest": {"a": "2", "b": "1", "c": "1"}, "pushed": True},
        {"a": "1", "b": "1", "d": "4"},
        previous_tag="t1",
        mermaid="flowchart LR\n  n0\n",
    )
    assert "| a | v1 | v2 | changed |" in text
    assert "| c | - | v1 | added |" in text
    assert "| d | v4 | - | removed |" in text
    assert "| b |" not in text
    assert text.endswith("```mermaid\nflowchart LR\n  n0\n```")


def test_annotations_escape_what_would_end_the_command() -> None:
    line = annotation("error", "50% done\nnext", title="sheet a, row 2: x", file="s.csv")
    assert line == "::error title=sheet a%2C row 2%3A x,file=s.csv::50%25 done%0Anext"


def test_validation_problems_become_error_annotations_in_actions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = ValidationError(
        "sheet 'c': 2 problems",
        [
            "sheet 'c', row 3, column 'active': 'maybe' is not a boolean",
            "sheet 'c': required column 'id' is missing from row 1",
        ],
    )
    annotate(error)
    assert capsys.readouterr().err == ""  # outside Actions: nothing
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    annotate(error)
    assert capsys.readouterr().err.splitlines() == [
        "::error title=sheet c%2C row 3%2C column active::"
        "sheet 'c', row 3, column 'active': 'maybe' is not a boolean",
        "::error title=sheet c::sheet 'c': required column 'id' is missing from row 1",
    ]


def test_retries_are_warnings_in_actions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    calls = iter([ConnectionError("refused"), "ok"])

    def flaky() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert retry.retry(flaky, transient=lambda e: True, what="read x", sleep=lambda s: None) == "ok"
    assert capsys.readouterr().err == (
        "::warning title=retry::read x failed (refused); retry 1/4 in 0.2s\n"
    )


def test_each_stage_is_a_group_in_actions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    with Stages() as stages:
        stages.say("sync", "one")
        stages.say("sync", "two")
        stages.say("train", "three")
    lines = [ln.strip() for ln in capsys.readouterr().err.splitlines()]
    assert lines[0] == "::group::sync" and lines[3] == "::endgroup::"
    assert lines[4] == "::group::train" and lines[-1] == "::endgroup::"
    assert lines.count("::group::sync") == 1


def awkward_lineage() -> Lineage:
    sync = SheetSync('cust"omers', "c" * 32, "sheets/a&b.csv", "rev <1>", "sync ...")
    versions = [
        VersionLineage(
            name=f"m[{i}]",
            version=i,
            run_id="r",
            git_sha="g",
            dolt_commit="d" * 32,
            dolt_branch="main",
            fingerprint="f",
            syncs=[sync],
        )
        for i in (1, 2)
    ]
    return Lineage("t" * 32, "registry:5000/img", "g", versions)


def test_mermaid_declares_each_node_once_and_escapes_labels() -> None:
    text = mermaid(awkward_lineage())
    assert text.startswith("flowchart LR\n")
    assert text.count("sync cust#quot;omers") == 1  # one node for the shared sync commit
    assert "rev #lt;1#gt;" in text and '"' not in text.replace('["', "").replace('"]', "")
    assert text.count(" --> ") == 2 + 2 + 1 + 1  # models -> image, commit -> models, sync chain


def test_the_mermaid_parser_accepts_awkward_labels(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (PARSER.parent / "node_modules" / "mermaid").is_dir():
        require("the Mermaid parser", "run 'bash infra/install-mermaid.sh' (make test does)")
    path = tmp_path / "g.mmd"
    path.write_text(mermaid(awkward_lineage()))
    done = subprocess.run([str(node), str(PARSER), str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    bad = tmp_path / "bad.mmd"
    bad.write_text('flowchart LR\n  n0["a"] --> ]]\n')
    assert subprocess.run([str(node), str(PARSER), str(bad)], capture_output=True).returncode == 1


def test_run_summary_holds_each_stage() -> None:
    report = {
        "main_commit": "a" * 32,
        "sheets": [
            {
                "sheet": "c",
                "branch": "sheets/c",
                "commit": "b" * 32,
                "added": 2,
                "changed": 0,
                "deleted": 0,
                "merged": "a" * 32,
            },
        ],
        "plan": {
            "to_commit": "a" * 32,
            "models": [
                {
                    "name": "m",
                    "train": True,
                    "reason": "new model",
                    "detail": "",
                    "latest_version": None,
                }
            ],
        },
        "training": {
            "dolt_commit": "a" * 32,
            "dolt_branch": "main",
            "trained": 1,
            "skipped": 0,
            "failed": 0,
            "seconds": 1.0,
            "models": [
                {
                    "name": "m",
                    "status": "trained",
                    "version": 1,
                    "run_id": "r",
                    "metrics": {"acc": 1.0},
                    "promoted": True,
                    "promotion": "promoted: first",
                    "reason": "new model",
                    "seconds": 0.5,
                }
            ],
        },
        "release": None,
        "release_skipped": "--no-release",
    }
    text = summary.run(report, summary.Links("http://mlflow:5000"))
    assert text.startswith("## run: main at `aaaaaaaaaaaa`")
    assert "| c | `sheets/c` | 2 | 0 | 0 | `bbbbbbbbbbbb` | `aaaaaaaaaaaa` |" in text
    assert "### plan: 1 of 1 models to train" in text and "### jobs" not in text
    assert "[v1](http://mlflow:5000/#/models/m/versions/1)" in text
    assert text.endswith("### release\n\nskipped: --no-release")


def test_a_summary_that_cannot_be_built_never_fails_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from platform_kit.cli.common import write_summary
    from platform_kit.errors import TrackingError

    def broken() -> str:
        raise TrackingError("MLflow is unreachable")

    write_summary(argparse.Namespace(summary=str(tmp_path / "s.md")), broken)
    assert not (tmp_path / "s.md").exists()
    assert "no job summary: MLflow is unreachable" in capsys.readouterr().err
