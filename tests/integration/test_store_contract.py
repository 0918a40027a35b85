"""The Store contract, run against every backend (today: real Dolt through dolt sql-server)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest

from platform_kit.errors import MergeConflictError, RefNotFoundError, StoreError
from platform_kit.store.base import ChangeSet, Store, TableSchema
from platform_kit.store.dolt import DoltStore
from tests.conftest import Services

SCHEMA = TableSchema(
    columns={
        "id": "string",
        "name": "string",
        "n": "int",
        "x": "float",
        "ok": "bool",
        "day": "date",
        "at": "datetime",
        "meta": "json",
    },
    primary_key=("id",),
)


def row(i: int, name: str = "r") -> dict[str, object]:
    return {
        "id": f"k{i:03d}",
        "name": f"{name}{i}",
        "n": i,
        "x": i / 2,
        "ok": i % 2 == 0,
        "day": dt.date(2024, 1, 1 + i % 28),
        "at": dt.datetime(2024, 1, 2, 3, 4, i % 60),
        "meta": f'{{"i": {i}}}',
    }


def dolt(services: Services) -> Store:
    store = DoltStore(
        services.dolt.host, services.dolt.port, "root", "", f"contract_{uuid.uuid4().hex[:10]}"
    )
    store.create_database()
    return store


BACKENDS: dict[str, Callable[[Services], Store]] = {"dolt": dolt}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, services: Services) -> Store:
    return BACKENDS[request.param](services)


def seed(store: Store, rows: int = 5) -> str:
    commit = store.commit_changes(
        "main", [ChangeSet("t", SCHEMA, inserts=[row(i) for i in range(rows)])], "seed"
    )
    assert commit is not None
    return commit


def test_create_database_is_idempotent(store: Store) -> None:
    store.create_database()
    assert set(store.branches()) == {"main"}


def test_commit_read_and_resolve(store: Store) -> None:
    commit = seed(store)
    assert store.resolve("main") == commit and len(commit) == 32
    assert store.resolve(commit) == commit
    assert store.tables("main") == ["t"]
    assert store.schema("t", commit) == SCHEMA
    assert store.schema("missing", commit) is None
    rows = store.read_table("t", commit)
    assert [r["id"] for r in rows] == [f"k{i:03d}" for i in range(5)]
    assert rows[2]["day"] == dt.date(2024, 1, 3) and rows[2]["n"] == 2
    assert store.log("main", limit=1)[0].message == "seed"


def test_query_reads_as_of_a_commit(store: Store) -> None:
    first = seed(store)
    store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[row(9)])], "add k009")
    q = "SELECT id FROM t WHERE n >= %(n)s ORDER BY id"
    assert [r["id"] for r in store.query(q, {"n": 3}, first)] == ["k003", "k004"]
    assert [r["id"] for r in store.query(q, {"n": 3}, "main")] == ["k003", "k004", "k009"]


def test_unknown_ref(store: Store) -> None:
    seed(store)
    with pytest.raises(RefNotFoundError):
        store.resolve("no-such-branch")
    with pytest.raises(RefNotFoundError):
        store.commit_changes("nope", [ChangeSet("t", SCHEMA, inserts=[row(1)])], "x")


def test_empty_change_makes_no_commit(store: Store) -> None:
    head = seed(store)
    assert store.commit_changes("main", [ChangeSet("t", SCHEMA)], "nothing") is None
    assert store.resolve("main") == head


def test_branches_changes_and_diff(store: Store) -> None:
    base = seed(store)
    assert store.create_branch("sheets/t", "main") == base
    assert store.create_branch("sheets/t", "main") == base  # exists: left as is
    change = ChangeSet(
        "t", SCHEMA, inserts=[row(7)], updates=[{**row(1), "name": "renamed"}], deletes=[("k002",)]
    )
    commit = store.commit_changes("sheets/t", [change], "edit", expected_head=base)
    assert commit and store.branches()["sheets/t"] == commit and store.resolve("main") == base
    assert store.changed_tables("main", "sheets/t") == ["t"]
    (diff,) = store.diff("main", "sheets/t")
    assert [c.key for c in diff.added] == [("k007",)]
    assert [c.key for c in diff.deleted] == [("k002",)]
    assert [(c.old and c.old["name"], c.new and c.new["name"]) for c in diff.modified] == [
        ("r1", "renamed")
    ]
    assert store.diff("main", "sheets/t", tables=["other"]) == []


def test_expected_head_guards_concurrent_writers(store: Store) -> None:
    base = seed(store)
    store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[row(8)])], "someone else")
    with pytest.raises(StoreError, match="moved"):
        store.commit_changes(
            "main", [ChangeSet("t", SCHEMA, inserts=[row(9)])], "me", expected_head=base
        )
    assert len(store.read_table("t", "main")) == 6


def test_new_column_in_the_same_commit(store: Store) -> None:
    seed(store)
    wider = TableSchema({**SCHEMA.columns, "extra": "string"}, SCHEMA.primary_key)
    store.commit_changes(
        "main",
        [
            ChangeSet(
                "t", wider, updates=[{**row(1), "extra": "e"}], add_columns={"extra": "string"}
            )
        ],
        "add extra",
    )
    assert store.schema("t", "main") == wider
    assert store.read_table("t", "main")[1]["extra"] == "e"


def test_merge_fast_forward_and_noop(store: Store) -> None:
    seed(store)
    store.create_branch("sheets/t", "main")
    head = store.commit_changes("sheets/t", [ChangeSet("t", SCHEMA, inserts=[row(7)])], "add")
    result = store.merge("sheets/t", "main")
    assert result.changed and result.fast_forward and result.commit == head
    again = store.merge("sheets/t", "main")
    assert not again.changed and again.commit == head


def test_merge_conflict_leaves_target_untouched(store: Store) -> None:
    seed(store)
    store.create_branch("sheets/t", "main")
    store.commit_changes(
        "sheets/t", [ChangeSet("t", SCHEMA, updates=[{**row(1), "name": "theirs"}])], "theirs"
    )
    main_head = store.commit_changes(
        "main", [ChangeSet("t", SCHEMA, updates=[{**row(1), "name": "ours"}])], "ours"
    )
    with pytest.raises(MergeConflictError) as info:
        store.merge("sheets/t", "main")
    assert info.value.conflicts == {"t": ["k001"]}
    assert store.resolve("main") == main_head
    assert store.read_table("t", "main")[1]["name"] == "ours"


def test_unsafe_identifiers_are_refused(store: Store) -> None:
    bad = TableSchema({"id": "string", "x; DROP TABLE t": "string"}, ("id",))
    with pytest.raises(StoreError, match="safe SQL identifier"):
        store.commit_changes("main", [ChangeSet("t", bad, inserts=[{"id": "1"}])], "x")
    with pytest.raises(StoreError, match="safe SQL identifier"):
        store.read_table("t`; --", "main")


def test_values_travel_as_parameters(store: Store) -> None:
    nasty = {**row(1), "name": 'Robert\'); DROP TABLE t;-- \u05e9\u05dc\u05d5\u05dd "q"\nline2'}
    store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[nasty])], "nasty")
    assert store.read_table("t", "main")[0]["name"] == nasty["name"]


def test_bulk_insert_round_trips_odd_values(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import platform_kit.store.dolt as dolt_backend

    monkeypatch.setattr(dolt_backend, "BULK_ROWS", 2)  # take the LOAD DATA path with few rows
    odd = ["tab\there", "new\nline", "back\\slash", "\\N", "שלום", "quote ' \" `", "cr\rhere", ""]
    rows = [{**row(i), "name": text} for i, text in enumerate(odd)]
    rows.append({**{k: None for k in SCHEMA.columns}, "id": "k999"})
    store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=rows)], "bulk")
    back = {r["id"]: r for r in store.read_table("t", "main")}
    assert [back[f"k{i:03d}"]["name"] for i in range(len(odd))] == odd
    assert back["k001"]["day"] == row(1)["day"] and back["k001"]["at"] == row(1)["at"]
    assert bool(back["k002"]["ok"]) is True and back["k002"]["meta"] is not None
    assert all(v is None for k, v in back["k999"].items() if k != "id")


def test_long_text_widens_its_column(store: Store) -> None:
    seed(store)
    long = "x" * 5000  # beyond what a new table's text columns start with
    store.commit_changes(
        "main", [ChangeSet("t", SCHEMA, updates=[{**row(1), "name": long}])], "long"
    )
    assert store.read_table("t", "main")[1]["name"] == long
    assert store.schema("t", "main") == SCHEMA


def test_many_text_columns_fit_a_row(store: Store) -> None:
    wide = TableSchema(
        {"id": "string", **{f"c{i}": "string" for i in range(40)}}, primary_key=("id",)
    )
    rows = [{"id": "a", **{f"c{i}": "y" * 2000 for i in range(40)}}]
    store.commit_changes("main", [ChangeSet("wide", wide, inserts=rows)], "wide")
    assert store.read_table("wide", "main") == rows
