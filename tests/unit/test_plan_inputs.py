"""What the planner is fed: fingerprints, code and query hashes, tables, command trainers."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from platform_kit.catalog import Model
from platform_kit.config import CommandTrainer, ModelConfig
from platform_kit.fingerprints import fingerprint, trainer_code_hash
from platform_kit.plan_inputs import query_tables
from platform_kit.rows import BATCH_KEY, batch_query
from platform_kit.workers import Task, run_task

ROWS = [
    {"text": "hello", "label": "a", "n": Decimal("1.50"), "at": dt.date(2026, 1, 2)},
    {"text": "bye", "label": "b", "n": Decimal("2"), "at": None},
]


def test_fingerprint_ignores_row_order_but_not_content() -> None:
    assert fingerprint(ROWS) == fingerprint(list(reversed(ROWS)))
    assert fingerprint(ROWS) != fingerprint([*ROWS, ROWS[0]])  # duplicates count
    changed = [dict(ROWS[0], label="c"), ROWS[1]]
    assert fingerprint(ROWS) != fingerprint(changed)
    assert fingerprint([]) != fingerprint([{}])
    # Column order inside a row does not matter either.
    assert fingerprint([{"a": 1, "b": 2}]) == fingerprint([{"b": 2, "a": 1}])


def test_query_tables_finds_known_tables_only() -> None:
    sql = "SELECT e.text FROM examples e JOIN customers c ON c.id = e.customer_id WHERE x = %(k)s"
    assert query_tables(sql, ["examples", "customers", "labels"]) == {"examples", "customers"}


def test_query_hash_covers_the_query_and_the_params_it_uses() -> None:
    entry = ModelConfig(
        name="intent-{customer_id}",
        query="SELECT text FROM examples WHERE customer_id = %(customer_id)s",
        trainer="training.intent:train",
        family="intent",
        for_each="SELECT customer_id, name FROM customers",
    )
    a = Model("intent-a", entry, {"customer_id": "a", "name": "A"})
    renamed = Model("intent-a", entry, {"customer_id": "a", "name": "Acme"})
    other = Model("intent-b", entry, {"customer_id": "b", "name": "A"})
    assert a.used_params == ("customer_id",)
    assert a.query_hash() == renamed.query_hash()  # 'name' is not used by the query
    assert a.query_hash() != other.query_hash()


def test_code_hash_follows_the_trainer_files(tmp_path: Path) -> None:
    (tmp_path / "mytrain").mkdir()
    (tmp_path / "mytrain" / "__init__.py").write_text("")
    (tmp_path / "mytrain" / "fit.py").write_text("def train(r, p, o): return {}\n")
    before = trainer_code_hash("mytrain.fit:train", tmp_path)
    (tmp_path / "mytrain" / "util.py").write_text("X = 1\n")
    after = trainer_code_hash("mytrain.fit:train", tmp_path / ".")
    assert before != after
    script = tmp_path / "fit.sh"
    script.write_text("echo 1\n")
    command = CommandTrainer("sh fit.sh {data} {out}")
    h1 = trainer_code_hash(command, tmp_path)
    script.write_text("echo 2\n")
    assert trainer_code_hash(command, tmp_path / "x" / "..") != h1


AWK_TRAINER = """\
#!/bin/sh
# Counts rows per label with awk: a non-Python trainer.
set -e
data="$1"; out="$2"
mkdir -p "$out/model"
awk -F, 'NR > 1 { n[$2]++ } END { for (k in n) print k, n[k] }' "$data" > "$out/model/counts.txt"
rows=$(awk 'END { print NR - 1 }' "$data")
printf '{"rows": %s, "accuracy": 1.0}\\n' "$rows" > "$out/metrics.json"
"""


def test_a_command_trainer_gets_data_and_writes_metrics(tmp_path: Path) -> None:
    (tmp_path / "count.sh").write_text(AWK_TRAINER)
    rows = [{"text": f"t{i}", "label": "a" if i % 3 else "b"} for i in range(9)]
    out = tmp_path / "work" / "out"
    outcome = run_task(
        Task("m", CommandTrainer("sh count.sh {data} {out}"), {}, rows, str(out), str(tmp_path))
    )
    assert outcome.error is None, outcome.error
    assert outcome.metrics == {"rows": 9.0, "accuracy": 1.0}
    counts = dict(line.split() for line in (out / "model" / "counts.txt").read_text().splitlines())
    assert counts == {"a": "6", "b": "3"}
    assert json.loads((out / "metrics.json").read_text())["rows"] == 9


def test_a_failing_command_reports_its_output(tmp_path: Path) -> None:
    out = tmp_path / "work" / "out"
    outcome = run_task(
        Task(
            "m", CommandTrainer("sh -c 'echo broken >&2; exit 3'"), {}, [], str(out), str(tmp_path)
        )
    )
    assert outcome.metrics is None
    assert (
        outcome.error is not None and "exited with 3" in outcome.error and "broken" in outcome.error
    )


def test_a_python_trainer_error_is_reported(tmp_path: Path) -> None:
    outcome = run_task(
        Task("m", "training.intent:train", {}, [], str(tmp_path / "w" / "out"), str(tmp_path))
    )
    assert outcome.metrics is None and outcome.error is not None
    assert "ValueError" in outcome.error and "at least 2 rows" in outcome.error


def test_a_family_query_is_batched_when_that_is_safe() -> None:
    sql = "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s ORDER BY example_id"
    rewrite = batch_query(sql)
    assert rewrite is not None
    template, column, name = rewrite
    assert (column, name) == ("customer_id", "customer_id")
    assert template == (
        f"SELECT customer_id AS {BATCH_KEY}, text, label FROM examples "
        "WHERE customer_id IN ({keys}) ORDER BY example_id"
    )
    joined = "select e.text from examples e join c on c.id = e.cid where e.cid = %(id)s and e.ok"
    assert batch_query(joined) is not None
    for unsafe in (
        "SELECT * FROM examples WHERE customer_id = %(customer_id)s",
        "SELECT text FROM examples WHERE customer_id = %(customer_id)s LIMIT 10",
        "SELECT DISTINCT text FROM examples WHERE customer_id = %(customer_id)s",
        "SELECT count(*) AS n FROM examples WHERE customer_id = %(customer_id)s",
        "SELECT text FROM examples WHERE a = %(a)s AND b = %(b)s",
        "SELECT text FROM examples WHERE customer_id <> %(customer_id)s",
        "SELECT text FROM examples",
    ):
        assert batch_query(unsafe) is None, unsafe
