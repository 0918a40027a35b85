"""Sync logic on the in-memory store: the same behaviours tests/integration/test_sync.py checks on
Dolt, in milliseconds. The memory store itself is held to Dolt's behaviour by the contract suite
(tests/integration/test_store_contract.py)."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from platform_kit.config import Config, load_config
from platform_kit.errors import MergeConflictError, ValidationError
from platform_kit.store.memory import MemoryStore
from platform_kit.sync import sync

HEADER = ["customer_id", "name", "active"]
ROWS = [["acme", "Acme", "true"], ["globex", "Globex", "false"], ["initech", "Initech", "yes"]]
CONFIG = """\
project: t
dolt: {database: training}
sheets:
  - name: customers
    source: {file: customers.csv}
    primary_key: [customer_id]
    columns: {customer_id: string, name: string, active: bool}
"""
MESSAGE = re.compile(
    r"^sync customers: \+(\d+) ~(\d+) -(\d+) rows \(source customers\.csv@(\S+)\)$"
)


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    # A new mtime each write: the file's revision, which the message records.
    stamp = path.stat().st_mtime + 1
    os.utime(path, (stamp, stamp))


@pytest.fixture
def project(tmp_path: Path) -> tuple[Config, MemoryStore, Path]:
    (tmp_path / "platform.yaml").write_text(CONFIG)
    write_csv(tmp_path / "customers.csv", ROWS)
    store = MemoryStore("training")
    store.create_database()
    return load_config(tmp_path / "platform.yaml"), store, tmp_path / "customers.csv"


def counts(message: str) -> tuple[int, int, int]:
    found = MESSAGE.match(message)
    assert found, message
    return int(found[1]), int(found[2]), int(found[3])


def test_first_sync_commits_to_the_sheet_branch(project: tuple[Config, MemoryStore, Path]) -> None:
    config, store, _ = project
    main = store.resolve("main")
    (result,) = sync(config, store).sheets
    assert result.branch == "sheets/customers" and result.commit
    assert store.branches()["sheets/customers"] == result.commit
    assert store.resolve("main") == main  # main moves only by a merge
    (entry, _) = store.log("sheets/customers", limit=2)
    assert entry.hash == result.commit and entry.message == result.message
    assert counts(entry.message) == (3, 0, 0)
    assert store.read_table("customers", result.commit) == [
        {"customer_id": "acme", "name": "Acme", "active": 1},
        {"customer_id": "globex", "name": "Globex", "active": 0},
        {"customer_id": "initech", "name": "Initech", "active": 1},
    ]


def test_a_resync_without_changes_makes_no_commit(
    project: tuple[Config, MemoryStore, Path],
) -> None:
    config, store, path = project
    sync(config, store)
    before = store.branches()
    unchanged = sync(config, store).sheets[0]  # same bytes: known unchanged without a diff
    assert unchanged.commit is None and not unchanged.has_changes
    # The same rows in another order and a new mtime: read and diffed, still nothing to commit.
    write_csv(path, list(reversed(ROWS)))
    rewritten = sync(config, store).sheets[0]
    assert rewritten.revision != "unchanged" and rewritten.commit is None
    assert (rewritten.added, rewritten.changed, rewritten.deleted) == (0, 0, 0)
    assert store.branches() == before


def test_a_two_row_edit(project: tuple[Config, MemoryStore, Path]) -> None:
    config, store, path = project
    first = sync(config, store).sheets[0]
    write_csv(path, [["acme", "Acme Corp", "true"], ROWS[1], ["initech", "Initech", "no"]])
    edit = sync(config, store).sheets[0]
    assert edit.commit and counts(edit.message) == (0, 2, 0)
    assert edit.message.endswith(f"(source customers.csv@{edit.revision})")
    (diff,) = store.diff(first.commit, edit.commit)  # type: ignore[arg-type]
    assert [(c.key, c.old and c.old["name"], c.new and c.new["name"]) for c in diff.modified] == [
        (("acme",), "Acme", "Acme Corp"),
        (("initech",), "Initech", "Initech"),
    ]
    assert diff.modified[1].new == {"customer_id": "initech", "name": "Initech", "active": 0}
    assert not diff.added and not diff.deleted
    assert store.resolve("sheets/customers~1") == first.commit


def test_added_changed_and_deleted_rows_then_merge(
    project: tuple[Config, MemoryStore, Path],
) -> None:
    config, store, path = project
    sync(config, store)
    write_csv(path, [["acme", "Acme Corp", "true"], ROWS[2], ["hooli", "Hooli", "1"]])
    edit = sync(config, store).sheets[0]
    assert counts(edit.message) == (1, 1, 1)
    assert [r["name"] for r in edit.samples["deleted"]] == ["Globex"]
    merged = store.merge("sheets/customers", "main", "merge sheets/customers into main")
    assert merged.fast_forward and store.resolve("main") == edit.commit
    assert [r["customer_id"] for r in store.read_table("customers", "main")] == [
        "acme",
        "hooli",
        "initech",
    ]


def test_dry_run_writes_nothing(project: tuple[Config, MemoryStore, Path]) -> None:
    config, store, _ = project
    before = store.branches()
    report = sync(config, store, dry_run=True)
    assert report.sheets[0].added == 3 and report.sheets[0].commit is None
    assert store.branches() == before


def test_sync_to_main(project: tuple[Config, MemoryStore, Path]) -> None:
    config, store, _ = project
    result = sync(config, store, branch="main").sheets[0]
    assert store.resolve("main") == result.commit and "sheets/customers" not in store.branches()


def test_an_invalid_sheet_writes_nothing(project: tuple[Config, MemoryStore, Path]) -> None:
    config, store, path = project
    sync(config, store)
    before = store.branches()
    write_csv(path, [["acme", "Acme", "perhaps"], ["acme", "Again", "true"], ["", "Nobody", "no"]])
    with pytest.raises(ValidationError) as info:
        sync(config, store)
    assert len(info.value.problems) == 3
    assert store.branches() == before


def test_a_new_column_and_a_type_change(project: tuple[Config, MemoryStore, Path]) -> None:
    config, store, path = project
    sync(config, store)
    yaml = config.path.read_text().replace("active: bool}", "active: bool, tier: int}")
    config.path.write_text(yaml)
    write_csv(path, [[*r, "2"] for r in ROWS], [*HEADER, "tier"])
    result = sync(load_config(config.path), store).sheets[0]
    assert result.new_columns == ["tier"] and counts(result.message) == (0, 3, 0)
    assert store.schema("customers", "sheets/customers").columns["tier"] == "int"  # type: ignore[union-attr]
    config.path.write_text(yaml.replace("tier: int", "tier: float"))
    with pytest.raises(ValidationError, match=r"'tier' is int in Dolt .* but float"):
        sync(load_config(config.path), store)


def test_a_merge_conflict_names_table_and_key(project: tuple[Config, MemoryStore, Path]) -> None:
    config, store, path = project
    sync(config, store, branch="main")
    write_csv(path, [["acme", "Acme on the branch", "true"], *ROWS[1:]])
    sync(config, store)
    write_csv(path, [["acme", "Acme on main", "true"], *ROWS[1:]])
    main_head = sync(config, store, branch="main").sheets[0].commit
    with pytest.raises(MergeConflictError, match="customers: acme") as info:
        store.merge("sheets/customers", "main")
    assert info.value.conflicts == {"customers": ["acme"]}
    assert store.resolve("main") == main_head
