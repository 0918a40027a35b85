"""The rows a sync loads stream to Dolt through a named pipe (issue 17): a writer that fails
half-way loads nothing, and a refused LOAD DATA leaves no writer behind."""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import platform_kit.store.dolt as dolt_backend
from platform_kit.errors import StoreError
from platform_kit.store.base import ChangeSet, TableSchema
from platform_kit.store.dolt import DoltStore
from tests.conftest import Services

SCHEMA = TableSchema(columns={"id": "string", "n": "int", "t": "string"}, primary_key=("id",))


def rows(count: int) -> list[dict[str, Any]]:
    return [{"id": f"k{i:05d}", "n": i, "t": f"text {i}\twith a tab"} for i in range(count)]


@pytest.fixture
def store(services: Services, monkeypatch: pytest.MonkeyPatch) -> DoltStore:
    monkeypatch.setattr(dolt_backend, "BULK_ROWS", 10)
    monkeypatch.setattr(dolt_backend, "_BATCH", 7)  # several writes through the pipe
    store = DoltStore(
        services.dolt.host, services.dolt.port, "root", "", f"load_{uuid.uuid4().hex[:8]}"
    )
    store.create_database()
    return store


def pipes() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("platform-kit-load-*"))


def test_streamed_rows_all_arrive(store: DoltStore) -> None:
    commit = store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=rows(100))], "load")
    assert commit
    assert store.read_table("t", "main") == rows(100)
    assert not [t for t in threading.enumerate() if t.name == "load-data"]


def test_a_writer_that_fails_half_way_loads_nothing(
    store: DoltStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = store.resolve("main")
    before = pipes()
    real = dolt_backend._tsv_column
    calls = []

    def failing(kind: str, values: list[Any]) -> list[str]:
        calls.append(kind)
        if len(calls) > 3 * 5:  # the sixth batch
            raise RuntimeError("disk full")
        return real(kind, values)

    monkeypatch.setattr(dolt_backend, "_tsv_column", failing)
    with pytest.raises(StoreError, match="could not write the rows to load: disk full"):
        store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=rows(100))], "load")
    assert store.resolve("main") == head and store.schema("t", "main") is None
    assert not [t for t in threading.enumerate() if t.name == "load-data"]
    assert pipes() <= before  # its pipe is gone too


def test_a_refused_load_leaves_no_writer_waiting(
    store: DoltStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement fails before Dolt asks for the file: the writer is let go, rows go in
    batches (the path of a server with local_infile off)."""
    real_execute: list[Any] = []

    def refuse(cur: Any) -> Any:
        execute = cur.execute

        def run(sql: str, params: Any = None) -> Any:
            if sql.startswith("LOAD DATA"):
                real_execute.append(sql)
                sql = sql.replace("LOAD DATA LOCAL INFILE", "LOAD DATA LOCAL INFILE_nope", 1)
            return execute(sql, params)

        cur.execute = run
        return cur

    real_apply = dolt_backend._apply
    monkeypatch.setattr(
        dolt_backend, "_apply", lambda cur, *a, **k: real_apply(refuse(cur), *a, **k)
    )
    with pytest.raises(StoreError):
        store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=rows(30))], "load")
    assert real_execute
    assert not [t for t in threading.enumerate() if t.name == "load-data"]
