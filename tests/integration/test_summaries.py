"""Job summaries, annotations and the lineage graph, written by real runs of the CLI.

The console script runs as GitHub Actions runs it (GITHUB_ACTIONS=true, a $GITHUB_STEP_SUMMARY
file per step, a run id) against real Dolt and MLflow servers: sync -> plan --format github ->
train each shard -> summary train (the pipeline's final job) -> lineage --format mermaid, which
the real Mermaid parser (npm `mermaid`, infra/install-mermaid.sh) must accept.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import Services, require
from tests.e2e.act_summaries import assert_pipeline_summaries
from tests.e2e.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
PARSER = ROOT / "infra" / "mermaid" / "parse.mjs"
VOCAB = {"billing": "refund invoice charge card", "shipping": "track parcel courier late"}


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


def examples(customer: str, n: int) -> list[list[str]]:
    rows = []
    for i in range(n):
        label = "billing" if i % 2 else "shipping"
        words = VOCAB[label].split()
        text = " ".join(words[(i + k) % 4] for k in range(3))
        rows.append([f"{customer}-{i:03d}", customer, text, label])
    return rows


def project(root: Path, services: Services) -> tuple[Path, str]:
    name = f"s{uuid.uuid4().hex[:10]}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(
        f"""\
project: {name}
dolt: {{database: {name}, server: "mysql://root@{services.dolt.host}:{services.dolt.port}"}}
mlflow: {{tracking_uri: "{services.mlflow_uri}", experiment: {name}}}
sheets:
  - name: customers
    source: {{file: customers.csv}}
    primary_key: [customer_id]
    columns: {{customer_id: string, active: bool}}
  - name: examples
    source: {{file: examples.csv}}
    primary_key: [example_id]
    columns: {{example_id: string, customer_id: string, text: string, label: string}}
models:
  - family: intent
    for_each: "SELECT customer_id FROM customers WHERE active"
    name: "{name}-intent-{{customer_id}}"
    query: "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s ORDER BY example_id"
    trainer: training.intent:train
    params: {{epochs: 2, lr: 0.05, buckets: 256, dim: 8}}
    promote_if: {{metric: accuracy, min: 0.0}}
  - name: {name}-broken
    query: "SELECT text, label FROM examples"
    trainer: {{command: "false"}}
"""
    )
    write_csv(
        root / "customers.csv", ["customer_id", "active"], [["acme", "true"], ["globex", "true"]]
    )
    write_csv(
        root / "examples.csv",
        ["example_id", "customer_id", "text", "label"],
        examples("acme", 30) + examples("globex", 30),
    )
    return root, name


def actions_env(tmp: Path, step: str, run_id: str) -> dict[str, str]:
    """What GitHub Actions (or act) gives one step: a summary file of its own, the run id, the
    job's name; and a directory keeping a copy of every summary, as the act test passes."""
    return {
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_STEP_SUMMARY": str(tmp / f"summary-{step}.md"),
        "GITHUB_OUTPUT": str(tmp / f"output-{step}.txt"),
        "GITHUB_RUN_ID": run_id,
        "GITHUB_WORKFLOW": "pipeline",
        "GITHUB_JOB": step.rstrip("0123456789"),
        "PLATFORM_KIT_SUMMARY_DIR": str(tmp / "kept"),
    }


def no_redraws(text: str) -> None:
    assert "\r" not in text, "a carriage-return redraw in a CI log"
    assert "\x1b[" not in text, "a terminal control sequence in a CI log"


def table_rows(markdown: str, first: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header starts with ``| first |``, by first cell."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in markdown.splitlines():
        if line.startswith(f"| {first} |"):
            inside = True
            continue
        if inside and line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if set(cells[0]) != {"-"}:
                rows[cells[0]] = cells
        elif inside:
            inside = False
    return rows


@pytest.mark.slow
def test_a_pipeline_run_writes_its_summaries(services: Services, tmp_path: Path) -> None:
    root, name = project(tmp_path / "proj", services)
    run_id = uuid.uuid4().hex[:12]
    config = ["--config", str(root / "platform.yaml")]

    # sync: per sheet the counts and the commit; --summary FILE gets the same text.
    own = tmp_path / "own-summary.md"
    env = actions_env(tmp_path, "sync", run_id)
    done = cli(*config, "sync", "--branch", "main", "--summary", str(own), env=env, cwd=root)
    no_redraws(done.stderr + done.stdout)
    text = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert own.read_text() == text
    head = json.loads(cli(*config, "data", "log", "-n", "1", "--json", cwd=root).stdout)
    head = head["commits"][0] if isinstance(head, dict) else head[0]
    sheets = table_rows(text, "sheet")
    assert sheets["customers"][2:5] == ["2", "0", "0"]
    assert sheets["examples"][2:5] == ["60", "0", "0"]
    assert any(head["hash"][:12] in row[-1] for row in sheets.values())
    assert "### examples: added rows (5 of 60)" in text and "acme-000" in text

    # An analyst's edit on a data branch: the diff (counts and the changed row) for review.
    rows = examples("acme", 30) + examples("globex", 30)
    rows[3][2] = "refund invoice refund"
    rows = rows[:-1]
    write_csv(root / "examples.csv", ["example_id", "customer_id", "text", "label"], rows)
    env = actions_env(tmp_path, "sync2", run_id)
    cli(*config, "sync", "--sheet", "examples", env=env, cwd=root)
    review = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert table_rows(review, "sheet")["examples"][1:5] == ["`sheets/examples`", "0", "1", "1"]
    assert "### examples: changed rows (1 of 1)" in review and "refund invoice refund" in review
    assert "### examples: deleted rows (1 of 1)" in review and "globex-029" in review
    assert "merge data** workflow with the branch `sheets/examples`" in review
    # What merging the branch would change in main, cell by cell.
    assert "### review examples: `sheets/examples` against `main`: +0 ~1 -1 rows" in review
    assert "| acme-003 | text | card refund invoice | refund invoice refund |" in review

    # plan --format github: every model, why, and the jobs.
    env = actions_env(tmp_path, "plan", run_id)
    cli(*config, "plan", "--format", "github", "--max-jobs", "2", env=env, cwd=root)
    output = dict(
        line.split("=", 1) for line in Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
    )
    matrix = output["matrix"]
    plan = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert plan.startswith("## plan: 3 of 3 models to train")
    decisions = table_rows(plan, "model")
    assert {k: v[1:3] for k, v in decisions.items()} == {
        f"{name}-intent-acme": ["yes", "new model"],
        f"{name}-intent-globex": ["yes", "new model"],
        f"{name}-broken": ["yes", "new model"],
    }
    assert len(table_rows(plan, "job")) == 2

    # train, one step per shard as the matrix runs it: a plain line per model, links to MLflow.
    failures = 0
    for index, item in enumerate(json.loads(matrix)["include"]):
        env = actions_env(tmp_path, f"train{index}", run_id)
        done = cli(*config, "train", "--shard", item["shard"], env=env, cwd=root, check=False)
        no_redraws(done.stderr + done.stdout)
        failures += done.returncode != 0
        shard = json.loads(item["shard"])
        lines = [
            ln for ln in done.stderr.splitlines() if ln.split()[:1] in (["trained"], ["failed"])
        ]
        assert len(lines) == len(shard["models"]), done.stderr
        text = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
        assert text.startswith(f"## train (job {index + 1}/{len(json.loads(matrix)['include'])})")
        for model, row in table_rows(text, "model").items():
            if model.endswith("-broken"):
                assert row[1] == "❌ failed" and row[5], row
            else:
                version = f"[v1]({services.mlflow_uri}/#/models/{model}/versions/1)"
                assert row[1:3] == ["trained", version] and row[4] == "yes"
                assert re.search(
                    rf"\[run\]\({re.escape(services.mlflow_uri)}/#/runs/\w{{32}}\)", row[7]
                )
                assert "accuracy=" in row[3]
    assert failures == 1  # the broken model's shard exits non-zero; its table still shows it

    # The final job: every shard's results in one table, the failure and a lost job included.
    lost = {"shard": json.dumps({"ref": "x", "models": ["lost-model"], "index": 2, "total": 3})}
    include = json.loads(matrix)["include"] + [lost]
    env = actions_env(tmp_path, "results", run_id)
    body = json.loads(
        cli(
            *config,
            "summary",
            "train",
            "--github-run",
            run_id,
            "--matrix",
            json.dumps({"include": include}),
            "--json",
            env=env,
            cwd=root,
        ).stdout
    )
    assert body["missing"] == ["lost-model"]
    assert {m["name"]: m["status"] for m in body["models"]} == {
        f"{name}-intent-acme": "trained",
        f"{name}-intent-globex": "trained",
        f"{name}-broken": "failed",
    }
    gathered = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert f"## training results of run {run_id}: 2 trained, 2 failed, 4 planned" in gathered
    results = table_rows(gathered, "model")
    assert (
        results["lost-model"][1] == "❌ failed" and "no result recorded" in results["lost-model"][5]
    )
    assert results[f"{name}-broken"][1] == "❌ failed"
    assert results[f"{name}-intent-acme"][2].startswith("[v1](")

    # The copies kept for act, checked the way the act end-to-end test checks them.
    trained = [f"{name}-intent-acme", f"{name}-intent-globex"]
    assert_pipeline_summaries(
        tmp_path / "kept", trained, 2, failed=[f"{name}-broken", "lost-model"], released=False
    )

    # lineage --format mermaid: sheet revisions -> Dolt commits -> the model version.
    graph = cli(*config, "lineage", f"{name}-intent-acme@1", "--format", "mermaid", cwd=root).stdout
    assert graph.startswith("flowchart LR\n")
    assert "sheet examples @" in graph and "sheet customers @" in graph
    assert f"{name}-intent-acme v1" in graph
    assert_mermaid_parses(graph, tmp_path)

    # The release summary: tag, image, the diff against this image's previous release, lineage.
    text, before, tag = release_summary_of(root, name)
    assert text.startswith(f"## release `{tag}`\n\nImage `127.0.0.1:5000/{name}:{tag}`: pushed")
    assert f"### models changed since `{before}`" in text
    changed = table_rows(text, "model")
    assert list(changed) == [f"{name}-intent-globex"]
    assert changed[f"{name}-intent-globex"][1:] == [
        "-",
        f"[v1]({services.mlflow_uri}/#/models/{name}-intent-globex/versions/1)",
        "added",
    ]
    graph = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert f"image 127.0.0.1:5000/{name}:{tag[:12]}" in graph
    assert_mermaid_parses(graph, tmp_path)
    (tmp_path / "release-summary.md").write_text(text)  # kept for a look (--basetemp)


def assert_mermaid_parses(text: str, tmp: Path) -> None:
    node = shutil.which("node")
    if node is None or not (PARSER.parent / "node_modules" / "mermaid").is_dir():
        require("the Mermaid parser", "run 'bash infra/install-mermaid.sh' (make test does)")
    path = tmp / "graph.mmd"
    path.write_text(text)
    done = subprocess.run(
        [str(node), str(PARSER), str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"Mermaid rejected the graph: {done.stderr}\n{text}"
    assert "flowchart" in done.stdout


def test_validation_errors_are_annotations_naming_sheet_row_and_column(
    services: Services, tmp_path: Path
) -> None:
    root, _ = project(tmp_path / "proj", services)
    write_csv(
        root / "customers.csv",
        ["customer_id", "active"],
        [["acme", "true"], ["globex", "maybe"], ["", "true"]],
    )
    env = actions_env(tmp_path, "bad", "1")
    done = cli("--config", "platform.yaml", "sync", env=env, cwd=root, check=False)
    assert done.returncode == 2
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("::error ")]
    assert errors[0].startswith(
        "::error title=sheet customers%2C row 3%2C column active,file=customers.csv,line=3::"
        "sheet 'customers', row 3, column 'active': 'maybe'"
    )
    assert any("row 4%2C column customer_id" in ln and "line=4" in ln for ln in errors)
    no_redraws(done.stderr)


def release_summary_of(root: Path, name: str) -> tuple[str, str, str]:
    """The release summary for an image of both intent models, after a recorded release that
    held only acme's: the diff names globex as added, the lineage graph is embedded."""
    from platform_kit.cli.lineage import release_summary
    from platform_kit.config import load_config
    from platform_kit.project import Project

    project = Project(load_config(root / "platform.yaml"))
    image = f"127.0.0.1:5000/{name}"
    acme, globex = f"{name}-intent-acme", f"{name}-intent-globex"
    before = uuid.uuid4().hex
    project.releases.record(before, image, {acme: "1"}, git_sha="0" * 40, dolt_commit="c" * 32)
    tag = uuid.uuid4().hex
    result = {
        "tag": tag,
        "image": image,
        "reference": f"{image}:{tag}",
        "pushed": True,
        "built": True,
        "manifest": {acme: "1", globex: "1"},
    }
    return release_summary(project, result), before, tag
