"""The Store contract, written once and run against every backend: real Dolt (a dolt sql-server)
and the in-memory store that unit tests use in its place.

A behaviour one backend lacks is not skipped: the memory store lists it in
``KNOWN_DIFFERENCES`` and the test that needs it reports an expected failure (``x`` in the
summary, with the reason). ``test_known_differences_are_pinned`` keeps that list honest.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mysql.connector
import pytest

import platform_kit.store.dolt as dolt_backend
from platform_kit.errors import MergeConflictError, RefNotFoundError, StoreError
from platform_kit.store.base import ChangeSet, Row, Store, TableSchema
from platform_kit.store.dolt import DoltStore
from platform_kit.store.memory import KNOWN_DIFFERENCES, MemoryServer, MemoryStore
from tests.conftest import Services

ROOT = Path(__file__).resolve().parents[2]

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


@dataclass
class Backend:
    """A store, and how to open another connection to the same database."""

    name: str
    store: Store
    reopen: Callable[[], Store]
    services: Services | None = None

    def dolt(self) -> DoltStore:
        assert isinstance(self.store, DoltStore)
        return self.store


def dolt(request: pytest.FixtureRequest) -> Backend:
    services: Services = request.getfixturevalue("services")
    name = f"contract_{uuid.uuid4().hex[:10]}"

    def open_store() -> Store:
        return DoltStore(services.dolt.host, services.dolt.port, "root", "", name)

    store = open_store()
    store.create_database()
    return Backend("dolt", store, open_store, services)


def memory(request: pytest.FixtureRequest) -> Backend:
    server = MemoryServer()
    store = MemoryStore("contract", server=server)
    store.create_database()
    return Backend("memory", store, lambda: MemoryStore("contract", server=server))


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Backend]] = {"dolt": dolt, "memory": memory}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param](request)


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


def differs(store: Store, behaviour: str) -> None:
    """Report an expected failure where the backend lists ``behaviour`` as a known difference."""
    reason = getattr(store, "known_differences", {}).get(behaviour)
    if reason:
        pytest.xfail(f"{type(store).__name__} differs from Dolt ({behaviour}): {reason}")


def seed(store: Store, rows: int = 5) -> str:
    commit = store.commit_changes(
        "main", [ChangeSet("t", SCHEMA, inserts=[row(i) for i in range(rows)])], "seed"
    )
    assert commit is not None
    return commit


def test_known_differences_are_pinned() -> None:
    assert set(KNOWN_DIFFERENCES) == {"cross-process", "privileges"}
    assert not getattr(DoltStore, "known_differences", {})


# ---------------------------------------------------------------------------- refs and reads


def test_create_database_is_idempotent(store: Store) -> None:
    store.create_database()
    assert set(store.branches()) == {"main"}
    assert len(store.log("main")) == 1


def test_a_missing_database_is_a_missing_ref(backend: Backend) -> None:
    other = (
        MemoryStore("nope")
        if backend.name == "memory"
        else DoltStore(backend.dolt().host, backend.dolt().port, "root", "", "nope_missing")
    )
    with pytest.raises(RefNotFoundError):
        other.branches()


def test_commit_read_and_resolve(store: Store) -> None:
    commit = seed(store)
    assert store.resolve("main") == commit and len(commit) == 32
    assert set(commit) <= set("0123456789abcdefghijklmnopqrstuv")
    assert store.resolve(commit) == commit
    assert store.tables("main") == ["t"]
    assert store.schema("t", commit) == SCHEMA
    assert store.schema("missing", commit) is None
    rows = store.read_table("t", commit)
    assert [r["id"] for r in rows] == [f"k{i:03d}" for i in range(5)]
    assert rows[2]["day"] == dt.date(2024, 1, 3) and rows[2]["n"] == 2
    assert store.log("main", limit=1)[0].message == "seed"


def test_values_read_back_as_dolt_returns_them(store: Store) -> None:
    value = {**row(2), "meta": '{"b": 1.0, "a": [1, 2.5, true, null], "c": "ü x"}'}
    store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[value])], "types")
    (back,) = store.read_table("t", "main")
    assert back == {
        "id": "k002",
        "name": "r2",
        "n": 2,
        "x": 1.0,
        "ok": 1,  # BOOLEAN is TINYINT(1)
        "day": dt.date(2024, 1, 3),
        "at": dt.datetime(2024, 1, 2, 3, 4, 2),
        "meta": '{"a":[1,2.5,true,null],"b":1,"c":"ü x"}',
    }
    assert [type(v) for v in back.values()] == [
        str,
        str,
        int,
        float,
        int,
        dt.date,
        dt.datetime,
        str,
    ]
    assert store.query("SELECT * FROM t WHERE id = %(id)s", {"id": "k002"}, "main") == [back]


def test_refs_head_and_ancestors(store: Store) -> None:
    first = seed(store)
    second = store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[row(9)])], "second")
    assert second is not None
    init = store.log("main")[-1].hash
    assert store.resolve("HEAD") == second
    assert store.resolve("main~1") == store.resolve("main^") == store.resolve("HEAD~1") == first
    assert store.resolve("main~2") == store.resolve(f"{second}~2") == init
    for bad in ("main~3", second[:8], "no-such-branch", "0" * 32):
        with pytest.raises(RefNotFoundError):
            store.resolve(bad)


def test_query_reads_as_of_a_commit(store: Store) -> None:
    first = seed(store)
    store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[row(9)])], "add k009")
    q = "SELECT id FROM t WHERE n >= %(n)s ORDER BY id"
    assert [r["id"] for r in store.query(q, {"n": 3}, first)] == ["k003", "k004"]
    assert [r["id"] for r in store.query(q, {"n": 3}, "main")] == ["k003", "k004", "k009"]


def test_the_queries_models_run(store: Store) -> None:
    """A family's for_each, a member's query and the batched form read_rows rewrites it to."""
    customers = TableSchema({"customer_id": "string", "active": "bool"}, ("customer_id",))
    examples = TableSchema(
        {"example_id": "string", "customer_id": "string", "text": "string", "label": "string"},
        ("example_id",),
    )
    store.commit_changes(
        "main",
        [
            ChangeSet(
                "customers",
                customers,
                inserts=[
                    {"customer_id": c, "active": a}
                    for c, a in (("acme", True), ("globex", False), ("initech", True))
                ],
            ),
            ChangeSet(
                "examples",
                examples,
                inserts=[
                    {"example_id": f"e{i}", "customer_id": c, "text": f"t{i}", "label": "x"}
                    for i, c in enumerate(["acme", "initech", "acme", "globex"])
                ],
            ),
        ],
        "seed",
    )
    family = "SELECT customer_id FROM customers WHERE active"
    assert store.query(family, None, "main") == [
        {"customer_id": "acme"},
        {"customer_id": "initech"},
    ]
    member = "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s"
    assert store.query(member, {"customer_id": "acme"}, "main") == [
        {"text": "t0", "label": "x"},
        {"text": "t2", "label": "x"},
    ]
    batched = (
        "SELECT customer_id AS __platform_kit_key, text, label FROM examples "
        "WHERE customer_id IN (%(__platform_kit_key0)s, %(__platform_kit_key1)s)"
    )
    found = store.query(
        batched, {"__platform_kit_key0": "acme", "__platform_kit_key1": "initech"}, "main"
    )
    assert sorted((r["__platform_kit_key"], r["text"]) for r in found) == [
        ("acme", "t0"),
        ("acme", "t2"),
        ("initech", "t1"),
    ]
    counted = "SELECT COUNT(*) AS n, CONCAT(`customer_id`, '!') AS c FROM `customers` WHERE active = TRUE GROUP BY customer_id ORDER BY c"
    assert store.query(counted, None, "main") == [{"n": 1, "c": "acme!"}, {"n": 1, "c": "initech!"}]
    with pytest.raises(StoreError):
        store.query("SELECT nope FROM customers", None, "main")


def typed(groups: dict[Any, list[Row]]) -> dict[str, list[list[tuple[str, str]]]]:
    """Groups with each value's type beside it: 1 == True in Python, not in a fingerprint."""
    return {
        repr(key): [[(k, repr(v)) for k, v in r.items()] for r in rows]
        for key, rows in groups.items()
    }


def grouped_by_hand(store: Store, sql: str, column: str) -> dict[Any, list[Row]]:
    groups: dict[Any, list[Row]] = {}
    for r in store.query(sql, None, "main"):
        groups.setdefault(r.pop(column), []).append(r)
    return groups


GROUPED_QUERIES = [
    # strings and integers only: Dolt packs each group as JSON
    "SELECT name AS g, id, n, ok FROM t WHERE n >= 0",
    "SELECT n % 3 AS g, id, name FROM t",
    # floats, dates and JSON: read row by row
    "SELECT ok AS g, id, x, day, at, meta FROM t",
    # ordered: a derived table may drop the ORDER BY, so read row by row
    "SELECT n % 2 AS g, id FROM t ORDER BY id DESC",
]


@pytest.mark.parametrize("sql", GROUPED_QUERIES)
def test_grouped_reads_are_the_query_grouped(store: Store, sql: str) -> None:
    odd = ["tab\there", "quote ' \" `", "back\\slash", "שלום 😀", "", "new\nline"]
    rows = [{**row(i, "same" if i < 4 else "r"), "name": text} for i, text in enumerate(odd)]
    rows += [{**row(6), "name": "same"}, {**{k: None for k in SCHEMA.columns}, "id": "k999"}]
    store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=rows)], "odd")
    expected = grouped_by_hand(store, sql, "g")
    found = store.query_groups(sql, None, "main", "g")
    assert len(found) == len(expected)
    assert typed(dict(found)) == typed(expected)


def test_dolt_packs_strings_and_integers_only(request: pytest.FixtureRequest) -> None:
    """How Dolt reads groups (the memory store groups the query's rows)."""
    store = dolt(request).dolt()
    seed(store)
    commit = store.resolve("main")
    packed = store._packed_groups("SELECT name AS g, id, n, ok FROM t", {}, commit, "g")
    assert packed is not None and len(packed) == 5
    for unpacked in ("SELECT ok AS g, x FROM t", "SELECT ok AS g, day FROM t"):
        assert store._packed_groups(unpacked, {}, commit, "g") is None
    with root_connection(store, store.database) as conn:  # the kit makes neither of these
        cur = conn.cursor()
        cur.execute(
            "CREATE TABLE e (id INT PRIMARY KEY, k VARCHAR(5) COLLATE utf8mb4_general_ci, "
            "kind ENUM('small', 'large'), body LONGTEXT)"
        )
        cur.execute(
            "INSERT INTO e VALUES (1, 'a', 'large', 'x'), (2, 'A', 'small', 'y'), "
            "(3, 'a', NULL, NULL)"
        )
        cur.execute("CALL DOLT_COMMIT('-Am', 'e')")
    commit = store.resolve("main")
    for unpacked in ("SELECT k AS g, kind FROM e", "SELECT k AS g, body FROM e"):
        assert store._packed_groups(unpacked, {}, commit, "g") is None
    sql = "SELECT k AS g, id FROM e"  # a case-insensitive key: grouped by its exact value
    assert store._packed_groups(sql, {}, commit, "g") is not None
    assert typed(dict(store.query_groups(sql, None, "main", "g"))) == {
        "'a'": [[("id", "1")], [("id", "3")]],
        "'A'": [[("id", "2")]],
    }
    assert typed(
        dict(store.query_groups("SELECT k AS g, kind, body FROM e", None, "main", "g"))
    ) == typed(grouped_by_hand(store, "SELECT k AS g, kind, body FROM e", "g"))


def test_unknown_ref(store: Store) -> None:
    seed(store)
    with pytest.raises(RefNotFoundError):
        store.resolve("no-such-branch")
    with pytest.raises(RefNotFoundError):
        store.commit_changes("nope", [ChangeSet("t", SCHEMA, inserts=[row(1)])], "x")


# ---------------------------------------------------------------------------- writes


def test_empty_change_makes_no_commit(store: Store) -> None:
    head = seed(store)
    assert store.commit_changes("main", [ChangeSet("t", SCHEMA)], "nothing") is None
    assert store.resolve("main") == head


def test_rewriting_rows_as_they_are_makes_no_commit(store: Store) -> None:
    head = seed(store)
    same = ChangeSet("t", SCHEMA, updates=[row(1), row(2)], deletes=[("k404",)])
    assert store.commit_changes("main", [same], "same") is None
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
    assert diff.added[0].old is None and diff.added[0].new == store.read_table("t", commit)[-1]
    assert diff.deleted[0].new is None and diff.deleted[0].old == store.read_table("t", base)[2]
    assert store.diff("main", "sheets/t", tables=["other"]) == []
    assert store.diff("main", "main") == [] and store.changed_tables(base, base) == []


def test_a_branch_another_writer_created_meanwhile_is_left_as_is(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, base = backend.store, seed(backend.store)
    other = backend.reopen()
    other.create_branch("sheets/t", "main")
    theirs = other.commit_changes("sheets/t", [ChangeSet("t", SCHEMA, inserts=[row(8)])], "theirs")
    # This writer looked before the other one created the branch (two syncs of one sheet at once).
    real, stale = store._branches, [True]
    monkeypatch.setattr(store, "_branches", lambda: {} if stale and stale.pop() else real())
    assert store.create_branch("sheets/t", "main") == theirs
    with pytest.raises(StoreError, match="moved"):  # what the sync that lost is then told
        store.commit_changes(
            "sheets/t", [ChangeSet("t", SCHEMA, inserts=[row(9)])], "mine", expected_head=base
        )


def test_expected_head_guards_concurrent_writers(store: Store) -> None:
    base = seed(store)
    store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[row(8)])], "someone else")
    with pytest.raises(StoreError, match="moved"):
        store.commit_changes(
            "main", [ChangeSet("t", SCHEMA, inserts=[row(9)])], "me", expected_head=base
        )
    assert len(store.read_table("t", "main")) == 6


def test_new_column_in_the_same_commit(store: Store) -> None:
    base = seed(store)
    wider = TableSchema({**SCHEMA.columns, "extra": "string"}, SCHEMA.primary_key)
    head = store.commit_changes(
        "main",
        [
            ChangeSet(
                "t", wider, updates=[{**row(1), "extra": "e"}], add_columns={"extra": "string"}
            )
        ],
        "add extra",
    )
    assert store.schema("t", "main") == wider
    rows = store.read_table("t", "main")
    assert rows[1]["extra"] == "e" and rows[0]["extra"] is None
    (diff,) = store.diff(base, "main")  # rows that only gained an empty column are not modified
    assert [c.key for c in diff.modified] == [("k001",)] and not diff.added and not diff.deleted
    assert diff.modified[0].old == {**row_as_read(store, base, 1), "extra": None}
    assert head is not None


def row_as_read(store: Store, ref: str, i: int) -> dict[str, object]:
    return store.read_table("t", ref)[i]


def test_schema_only_change(store: Store) -> None:
    base = seed(store)
    wider = TableSchema({**SCHEMA.columns, "extra": "int"}, SCHEMA.primary_key)
    store.commit_changes("main", [ChangeSet("t", wider, add_columns={"extra": "int"})], "col")
    assert store.changed_tables(base, "main") == ["t"]
    (diff,) = store.diff(base, "main")
    assert diff.counts == (0, 0, 0)


# ---------------------------------------------------------------------------- merges


def test_merge_fast_forward_and_noop(store: Store) -> None:
    seed(store)
    store.create_branch("sheets/t", "main")
    head = store.commit_changes("sheets/t", [ChangeSet("t", SCHEMA, inserts=[row(7)])], "add")
    result = store.merge("sheets/t", "main")
    assert result.changed and result.fast_forward and result.commit == head
    again = store.merge("sheets/t", "main")
    assert not again.changed and again.commit == head


def test_merge_of_both_sides_cell_by_cell(store: Store) -> None:
    seed(store)
    store.create_branch("sheets/t", "main")
    theirs = store.commit_changes(
        "sheets/t",
        [ChangeSet("t", SCHEMA, updates=[{**row(1), "name": "theirs"}], inserts=[row(8)])],
        "theirs",
    )
    ours = store.commit_changes(
        "main", [ChangeSet("t", SCHEMA, updates=[{**row(1), "n": 100}])], "ours"
    )
    result = store.merge("sheets/t", "main", "merge sheets/t into main")
    assert result.changed and not result.fast_forward and result.commit not in (ours, theirs)
    merged = store.read_table("t", "main")
    assert (merged[1]["name"], merged[1]["n"]) == ("theirs", 100) and merged[-1]["id"] == "k008"
    messages = [c.message for c in store.log("main")]
    assert messages[0] == "merge sheets/t into main"
    assert {"theirs", "ours", "seed"} <= set(messages[1:])
    assert store.resolve("main~1") == ours  # first parent: the branch merged into


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


def test_merge_conflict_of_a_delete_names_the_row(store: Store) -> None:
    seed(store)
    store.create_branch("sheets/t", "main")
    store.commit_changes("sheets/t", [ChangeSet("t", SCHEMA, deletes=[("k003",)])], "drop")
    store.commit_changes(
        "main", [ChangeSet("t", SCHEMA, updates=[{**row(3), "name": "kept"}])], "edit"
    )
    with pytest.raises(MergeConflictError) as info:
        store.merge("sheets/t", "main")
    assert info.value.conflicts == {"t": ["k003"]}


# ---------------------------------------------------------------------------- input checks


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


# ---------------------------------------------------------------------------- locks and claims


def test_lock_excludes_a_second_holder(backend: Backend) -> None:
    other = backend.reopen()
    name = f"release-{uuid.uuid4().hex[:6]}"
    with backend.store.lock(name, timeout=5):
        started = time.monotonic()
        with (
            pytest.raises(StoreError, match=f"lock '{name}' is held by another") as info,
            other.lock(name, timeout=1),
        ):
            pass
        assert 0.9 <= time.monotonic() - started < 5
        assert "gave up after 1s" in str(info.value)
        with other.lock(f"{name}-other", timeout=0):  # other names are free
            pass
    with other.lock(name, timeout=0):  # released when the block ended
        pass


def test_lock_is_released_when_the_block_raises(store: Store) -> None:
    with pytest.raises(ZeroDivisionError), store.lock("boom", timeout=1):
        raise ZeroDivisionError
    with store.lock("boom", timeout=0):
        pass


def test_lock_waits_for_the_holder(backend: Backend) -> None:
    holding = threading.Event()

    def hold() -> None:
        with backend.reopen().lock("wait", timeout=5):
            holding.set()
            time.sleep(1.5)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    started = time.monotonic()
    with backend.store.lock("wait", timeout=10):
        waited = time.monotonic() - started
    thread.join()
    assert 0.5 < waited < 5


def test_lock_and_claim_check_their_names(store: Store) -> None:
    for bad in ("", "a b", "x'; --", "-lead", "y" * 300):
        with pytest.raises(StoreError, match="not a valid"):
            store.lock(bad)
        with pytest.raises(StoreError, match="not a valid"):
            store.claim(bad)
    with pytest.raises(StoreError, match="timeout"):
        store.lock("x", timeout=-1)


def test_claim_first_wins(backend: Backend) -> None:
    key = f"run:main:{uuid.uuid4().hex}"
    assert backend.store.claim(key) is True
    assert backend.store.claim(key) is False
    assert backend.reopen().claim(key) is False  # another connection sees it
    assert backend.reopen().claim(key + "x") is True


def test_claims_race_between_threads(backend: Backend) -> None:
    prefix = uuid.uuid4().hex[:8]
    results: dict[int, list[bool]] = {}
    gate = threading.Barrier(3)

    def claimer(n: int) -> None:
        store = backend.reopen()
        gate.wait()
        results[n] = [store.claim(f"{prefix}-{i}") for i in range(10)]

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [sum(r[i] for r in results.values()) for i in range(10)] == [1] * 10


# -- across processes: each child opens its own store, as a job on another runner would

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from platform_kit.errors import StoreError
    from platform_kit.store.dolt import DoltStore

    host, port, database, action, arg = sys.argv[1:6]
    store = DoltStore(host, int(port), "root", "", database)
    if action == "hold":
        with store.lock(arg, timeout=10):
            print("held", flush=True)
            sys.stdin.read()  # until the parent closes stdin, or kills this process
    elif action == "try":
        try:
            with store.lock(arg, timeout=1):
                print("got")
        except StoreError as exc:
            print(f"refused: {exc}")
    elif action == "claim":
        time.sleep(max(0.0, float(sys.argv[6]) - time.time()))
        print(json.dumps([store.claim(f"{arg}-{i}") for i in range(15)]))
    """
)


def child(backend: Backend, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    store = backend.dolt()
    command = [sys.executable, "-c", CHILD, store.host, str(store.port), store.database, *args]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(command, text=True, env=env, stdout=subprocess.PIPE, **kwargs)  # type: ignore[call-overload,no-any-return]


def test_lock_excludes_another_process(backend: Backend) -> None:
    differs(backend.store, "cross-process")
    with backend.store.lock("release", timeout=5):
        out, _ = child(backend, "try", "release").communicate(timeout=60)
    assert out.startswith("refused: lock 'release' is held by another process")
    out, _ = child(backend, "try", "release").communicate(timeout=60)
    assert out.strip() == "got"


def test_a_killed_holder_frees_its_lock(backend: Backend) -> None:
    differs(backend.store, "cross-process")
    holder = child(backend, "hold", "deploy", stdin=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match="held by another"), backend.store.lock("deploy", 1):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with backend.store.lock("deploy", timeout=10):  # the server saw its connection drop
            pass
    finally:
        holder.kill()
        holder.wait()


def test_claims_race_between_processes(backend: Backend) -> None:
    differs(backend.store, "cross-process")
    prefix = uuid.uuid4().hex[:8]
    start = str(time.time() + 3)  # both children start claiming at the same moment
    children = [child(backend, "claim", prefix, start) for _ in range(2)]
    results = [json.loads(c.communicate(timeout=120)[0]) for c in children]
    assert [a + b for a, b in zip(*results, strict=True)] == [1] * 15


# ---------------------------------------------------------------------------- privileges


SYNC_GRANTS = "SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, EXECUTE"  # infra/dolt-users.py


@contextmanager
def user_on_one_database(store: DoltStore, grants: str) -> Iterator[Callable[[str], DoltStore]]:
    """Stores for a fresh user holding ``grants`` on ``store``'s database and nothing else."""
    user, password = f"u_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with root_connection(store) as conn:
        cur = conn.cursor()
        cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, "%", password))
        cur.execute(f"GRANT {grants} ON `{store.database}`.* TO %s@%s", (user, "%"))
    try:
        yield lambda database: DoltStore(store.host, store.port, user, password, database)
    finally:
        with root_connection(store) as conn:
            conn.cursor().execute("DROP USER %s@%s", (user, "%"))


@pytest.fixture
def limited(backend: Backend) -> Iterator[Callable[[str], DoltStore]]:
    """Stores for a fresh user with the sync user's rights on the backend's database only."""
    differs(backend.store, "privileges")
    with user_on_one_database(backend.dolt(), SYNC_GRANTS) as make:
        yield make


@pytest.fixture
def reader(backend: Backend) -> Iterator[Callable[[str], DoltStore]]:
    """Stores for a fresh user that may only SELECT from the backend's database."""
    differs(backend.store, "privileges")
    with user_on_one_database(backend.dolt(), "SELECT") as make:
        yield make


def root_connection(
    store: DoltStore, database: str | None = None
) -> mysql.connector.MySQLConnection:
    return mysql.connector.connect(  # type: ignore[return-value]
        host=store.host, port=store.port, user="root", database=database, autocommit=True
    )


def test_a_user_with_rights_on_one_database_can_sync(
    backend: Backend,
    limited: Callable[[str], DoltStore],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(backend.store)
    mine = limited(backend.store.database)
    mine.create_database()  # exists: no CREATE DATABASE, which this user may not run
    head = mine.create_branch("sheets/x", "main")
    monkeypatch.setattr(dolt_backend, "BULK_ROWS", 2)  # LOAD DATA needs FILE: batched instead
    caplog.set_level(logging.INFO, logger=dolt_backend.__name__)
    commit = mine.commit_changes(
        "sheets/x",
        [ChangeSet("t", SCHEMA, inserts=[row(i) for i in range(10, 14)], deletes=[("k001",)])],
        "sync x",
        expected_head=head,
    )
    assert commit and mine.log("sheets/x", limit=1)[0].message == "sync x"
    assert len(mine.read_table("t", "sheets/x")) == 8
    assert f"LOAD DATA LOCAL INFILE refused (user '{mine.user}' has no FILE privilege)" in (
        caplog.text
    )


def test_a_refused_statement_names_itself_and_the_user(
    backend: Backend, limited: Callable[[str], DoltStore]
) -> None:
    seed(backend.store)
    other = limited(f"{backend.store.database}_other")
    with pytest.raises(StoreError) as info:
        other.create_database()
    message = str(info.value)
    assert message.startswith(
        f"Dolt refused CREATE DATABASE `{other.database}` for user '{other.user}'"
    )
    assert "infra/dolt-users.py" in message and other._password not in message

    mine = limited(backend.store.database)
    database = backend.store.database
    with root_connection(backend.dolt(), database) as conn:
        conn.cursor().execute(
            "INSERT INTO dolt_branch_control VALUES (%s, 'main', %s, %s, 'read')",
            (database, mine.user, "%"),
        )
    try:
        with pytest.raises(StoreError, match=f"on branch 'main' for user '{mine.user}'"):
            mine.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[row(20)])], "no")
    finally:
        with root_connection(backend.dolt(), database) as conn:
            conn.cursor().execute(
                "DELETE FROM dolt_branch_control WHERE `database` = %s AND user = %s",
                (database, mine.user),
            )


def test_claims_need_rights_on_the_bookkeeping_database(
    backend: Backend, limited: Callable[[str], DoltStore]
) -> None:
    backend.store.claim(f"setup-{uuid.uuid4().hex}")  # as root: creates platform_kit.claims
    mine = limited(backend.store.database)
    with pytest.raises(StoreError, match=r"infra/dolt-users\.py"):
        mine.claim("denied")
    with root_connection(backend.dolt()) as conn:
        conn.cursor().execute("GRANT SELECT, INSERT ON `platform_kit`.* TO %s@%s", (mine.user, "%"))
    key = f"granted-{uuid.uuid4().hex}"
    assert mine.claim(key) is True and mine.claim(key) is False
    # Branch control applies to the bookkeeping database too (its branch main).
    with root_connection(backend.dolt(), "platform_kit") as conn:
        conn.cursor().execute(
            "INSERT INTO dolt_branch_control VALUES ('platform_kit', 'main', %s, %s, 'read')",
            (mine.user, "%"),
        )
    try:
        with pytest.raises(StoreError, match="dolt_branch_control") as info:
            mine.claim(f"{key}-2")
        assert f"let user '{mine.user}' write branch 'main' of database platform_kit" in str(
            info.value
        )
    finally:
        with root_connection(backend.dolt(), "platform_kit") as conn:
            conn.cursor().execute(
                "DELETE FROM dolt_branch_control WHERE `database` = 'platform_kit' AND user = %s",
                (mine.user,),
            )


def test_a_read_only_user_can_plan_and_release(
    backend: Backend, reader: Callable[[str], DoltStore]
) -> None:
    """What plan, train and release do as kit_read: SELECT, locks, and claims once granted."""
    base = seed(backend.store)
    head = backend.store.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[row(9)])], "more")
    mine = reader(backend.store.database)
    mine.create_database()
    assert mine.resolve("main") == head and mine.resolve("main~1") == base
    assert mine.changed_tables(base, head) == ["t"] and mine.diff(base, head)[0].counts == (1, 0, 0)
    assert mine.query("SELECT id FROM t WHERE n > %(n)s", {"n": 4}, head) == [{"id": "k009"}]
    assert [c.message for c in mine.log("main", limit=2)] == ["more", "seed"]
    with mine.lock("release", timeout=1):  # GET_LOCK needs no privilege
        pass
    with pytest.raises(StoreError, match=f"Dolt refused .* for user '{mine.user}'"):
        mine.commit_changes("main", [ChangeSet("t", SCHEMA, inserts=[row(10)])], "no")
    assert backend.store.resolve("main") == head


def test_tags_point_at_a_commit_with_a_note_and_move(store: Store) -> None:
    """Sync's record of what each head holds (issue 17): set, read back, moved, per database."""
    first = seed(store)
    name = "sync/sheets/x/x"
    assert store.tag(name) is None
    store.set_tag(name, "main", "key-1")
    assert store.tag(name) == (first, "key-1")
    store.set_tag(name, first, "key-2")  # moving onto the same commit replaces the note
    assert store.tag(name) == (first, "key-2")
    store.set_tag(name, first, "key-3\nseed\n" + "x" * 100_000)
    assert store.tag(name, first_line=True) == (first, "key-3")
    assert store.tag(name) == (first, "key-3\nseed\n" + "x" * 100_000)
    with pytest.raises(StoreError):
        store.tag("bad name; DROP")
