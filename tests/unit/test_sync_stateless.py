"""A resync decides "unchanged" from what the store holds (issue 17), not from local files.

The sync tag (``sync/<branch>/<sheet>``) points at the head the last sync left, with the
source's key as its note: a fresh workspace with the same bytes skips without reading.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest

from platform_kit.config import SheetConfig, load_config
from platform_kit.sheets import RawSheet, SheetReader, reader_for
from platform_kit.sheets.validate import TypedSheet
from platform_kit.store.memory import MemoryStore
from platform_kit.sync import source_key, sync, sync_tag

CONFIG = """\
project: t
dolt: {database: training}
sheets:
  - name: customers
    source: {file: customers.csv}
    primary_key: [customer_id]
    columns: {customer_id: string, name: string, active: bool}
"""
ROWS = [["customer_id", "name", "active"], ["acme", "Acme", "true"], ["globex", "G", "no"]]


class Counting(SheetReader):
    """The file reader, counting full reads."""

    def __init__(self, root: Path) -> None:
        self.inner = reader_for(load_config(root / "platform.yaml").sheets[0], root)
        self.reads = 0

    def read(self, sheet: SheetConfig) -> RawSheet:
        self.reads += 1
        return self.inner.read(sheet)


def workspace(root: Path, rows: list[list[str]] = ROWS, config: str = CONFIG) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(config)
    with (root / "customers.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return root


def test_a_fresh_workspace_with_the_same_file_reads_nothing(tmp_path: Path) -> None:
    store = MemoryStore("training")
    store.create_database()
    first = workspace(tmp_path / "a")
    config = load_config(first / "platform.yaml")
    done = sync(config, store).sheets[0]
    assert done.commit
    key = source_key(config.sheets[0], reader_for(config.sheets[0], first))
    tag = store.tag(sync_tag("sheets/customers", "customers"))
    assert tag is not None and tag[0] == done.commit and tag[1].split("\n")[0] == key
    assert not (first / ".platform" / "sync-state.json").exists()  # no local state written

    # Another checkout, elsewhere, with no .platform at all: the same bytes, so no read.
    shutil.rmtree(first / ".platform", ignore_errors=True)
    fresh = workspace(tmp_path / "b")
    reader = Counting(fresh)
    heads = store.branches()
    again = sync(load_config(fresh / "platform.yaml"), store, reader=lambda s: reader).sheets[0]
    assert again.revision == "unchanged" and again.commit is None and reader.reads == 0
    assert store.branches() == heads


def test_an_edit_a_config_change_or_a_moved_branch_is_read_again(tmp_path: Path) -> None:
    store = MemoryStore("training")
    store.create_database()
    root = workspace(tmp_path)
    sync(load_config(root / "platform.yaml"), store)

    edited = workspace(tmp_path, [*ROWS, ["initech", "I", "yes"]])
    result = sync(load_config(edited / "platform.yaml"), store).sheets[0]
    assert result.added == 1 and result.commit
    tag = store.tag(sync_tag("sheets/customers", "customers"))
    assert tag is not None and tag[0] == result.commit  # the tag follows the new head

    # A stricter rule in platform.yaml: the same bytes are read and validated again.
    stricter = CONFIG + "    required: [name]\n"
    reader = Counting(workspace(tmp_path, [*ROWS, ["initech", "I", "yes"]], stricter))
    sync(load_config(tmp_path / "platform.yaml"), store, reader=lambda s: reader)
    assert reader.reads == 1


def test_a_dry_run_records_nothing(tmp_path: Path) -> None:
    store = MemoryStore("training")
    store.create_database()
    root = workspace(tmp_path)
    sync(load_config(root / "platform.yaml"), store, dry_run=True)
    assert store.tag(sync_tag("sheets/customers", "customers")) is None


def many(n: int) -> list[list[str]]:
    return [ROWS[0], *([f"c{i:04d}", f"Name {i}", "yes" if i % 2 else "no"] for i in range(n))]


def test_a_small_edit_parses_and_compares_only_the_changed_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row digests in the sync tag: the edit makes the same commit as a full comparison."""
    import platform_kit.sync as sync_module

    seen: list[tuple[int, int]] = []
    real = sync_module.validate

    def spy(*args: Any, **kwargs: Any) -> TypedSheet:
        typed = real(*args, **kwargs)
        seen.append((len(typed.rows), len(typed.kept)))
        return typed

    monkeypatch.setattr(sync_module, "validate", spy)
    rows = many(200)
    edited = [list(r) for r in rows]
    edited[5][1] = "Renamed"  # changed
    edited[6][2] = "true"  # other bytes, same value: no update
    del edited[10]  # deleted
    edited.append(["c9999", "New", "no"])  # added
    results = {}
    for how in ("digests", "full"):
        store = MemoryStore("training")
        store.create_database()
        root = workspace(tmp_path / how, rows)
        sync(load_config(root / "platform.yaml"), store)
        if how == "full":  # no row digests to go by: every row compared, as before issue 17
            tag = sync_tag("sheets/customers", "customers")
            store.set_tag(tag, "sheets/customers", "-")
        seen.clear()
        workspace(tmp_path / how, edited)
        result = sync(load_config(root / "platform.yaml"), store).sheets[0]
        assert result.commit
        (diff,) = store.diff(store.log("sheets/customers", 2)[1].hash, result.commit)
        table = store.read_table("customers", result.commit)
        results[how] = (result.message, result.samples, diff.counts, table, seen[-1])
    assert results["digests"][:4] == results["full"][:4]
    assert results["digests"][2] == (1, 1, 1)
    assert results["digests"][4] == (3, 197)  # 3 rows parsed in full, 197 by key only
    assert results["full"][4] == (200, 0)


def test_rows_hashed_as_lines_then_as_cells_compare_right(tmp_path: Path) -> None:
    """An export without quotes is hashed line by line, one with quotes cell by cell: a sync
    that meets the other style compares every row, and commits exactly the change."""
    store = MemoryStore("training")
    store.create_database()
    rows = many(50)
    root = workspace(tmp_path, rows)
    sync(load_config(root / "platform.yaml"), store)
    edited = [list(r) for r in rows]
    edited[3][1] = "Name, with a comma"  # the writer quotes it: no longer line by line
    edited[7][2] = "yes" if edited[7][2] == "no" else "no"
    workspace(tmp_path, edited)
    assert '"' in (root / "customers.csv").read_text()
    result = sync(load_config(root / "platform.yaml"), store).sheets[0]
    assert (result.added, result.changed, result.deleted) == (0, 2, 0)
    edited[9][1] = "Renamed"  # quoted again, now against digests of the same style
    workspace(tmp_path, edited)
    result = sync(load_config(root / "platform.yaml"), store).sheets[0]
    assert (result.added, result.changed, result.deleted) == (0, 1, 0)
    table = {r["customer_id"]: r for r in store.read_table("customers", "sheets/customers")}
    assert table[edited[3][0]]["name"] == "Name, with a comma"
    assert table[edited[9][0]]["name"] == "Renamed"
