"""Validation a column at a time (the fast path of issue 17) gives exactly what the row loop gives.

Each case runs twice: as validate() runs it, and with the column path switched off, so the row
loop decides alone. Same rows, keys, kept keys and columns, or the same error, word for word.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from platform_kit.config import SheetConfig
from platform_kit.errors import ValidationError
from platform_kit.sheets import RawSheet
from platform_kit.sheets import validate as validation
from platform_kit.sheets.files import SplitRows
from tests.unit.test_validate import GOOD, HEADER, SHEET  # one sheet for both suites


def outcome(sheet: SheetConfig, raw: RawSheet, unchanged: list[bool] | None) -> Any:
    """What validate() gives, comparable: the typed sheet's parts, or the error's words."""
    try:
        typed = validation.validate(sheet, raw, unchanged)
    except ValidationError as exc:
        return ("error", str(exc), exc.problems)
    return (typed.columns, list(typed.rows.items()), typed.kept, typed.undeclared)


def both(
    rows: list[list[Any]],
    monkeypatch: pytest.MonkeyPatch,
    unchanged: list[bool] | None = None,
    sheet: SheetConfig = SHEET,
    header: list[Any] | None = None,
) -> tuple[Any, Any]:
    raw = RawSheet(header or HEADER, rows, "people.csv", "r1")

    fast = outcome(sheet, raw, unchanged)
    with monkeypatch.context() as patch:
        patch.setattr(validation, "_by_column", lambda *args: None)
        slow = outcome(sheet, raw, unchanged)
    return fast, slow


CELLS = {
    "age": ["", "7", " 8 ", "1,000", "1_000", "2.0", "2.5", "x", "-3", "+4", "1e3"],
    "score": ["", "0.5", " 1.5", "1,5", "nan", "inf", "1e-3", "abc", "-0", "1_0"],
    "vip": ["", "yes", "No", " TRUE ", "1", "0", "maybe", "t", "F"],
    "born": ["", "2024-01-02", "20240102", " 2024-01-02", "2024-01-02T03:04", "2024-13-01"],
    "seen": [
        "",
        "2024-01-02 03:04:05",
        "2024-01-02T03:04:05Z",
        "2024-01-02",
        "x",
        "2024-01-02T03:04:05+02:00",
    ],
    "meta": ["", '{"b": 2, "a": 1}', "[1, 2]", "{bad", "3"],
    "name": ["", "Bob", " spaced ", "#REF!", "#hashtag", "tab\there", "a\x01b", "x" * 60_000],
}


@pytest.mark.parametrize("seed", range(40))
def test_random_sheets_agree(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    rows: list[list[Any]] = []
    for i in range(rng.randint(0, 30)):
        row = [f"p{rng.randint(0, 40) if seed % 3 == 0 else i}", *GOOD[1:]]
        if rng.random() < 0.3:
            column = rng.choice(list(CELLS))
            row[HEADER.index(column)] = rng.choice(CELLS[column])
        if rng.random() < 0.05:
            row = row[: rng.randint(0, len(row))]  # short
        if rng.random() < 0.05:
            row = [*row, rng.choice(["", "extra"])]  # longer
        if rng.random() < 0.05:
            row = [""] * rng.randint(0, 9)  # blank
        rows.append(row)
    unchanged = [rng.random() < 0.5 for _ in rows] if seed % 2 else None
    fast, slow = both(rows, monkeypatch, unchanged)
    assert fast == slow


def test_the_column_path_is_taken_for_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [[f"p{i}", *GOOD[1:]] for i in range(50)]
    raw = RawSheet(HEADER, rows, "people.csv", "r1")
    taken = validation._by_column(SHEET, raw, HEADER, dict(SHEET.columns), None)
    assert taken is not None and len(taken.rows) == 50
    fast, slow = both(rows, monkeypatch, [i % 2 == 0 for i in range(50)])
    assert fast == slow


@pytest.mark.parametrize(
    "rows",
    [
        [GOOD, GOOD],  # duplicate key
        [GOOD, ["p2", "", *GOOD[2:]]],  # required empty
        [GOOD, ["p2", "B", "x", *GOOD[3:]]],  # bad int
        [GOOD, ["", "B", *GOOD[2:]]],  # no key
        [GOOD, [*GOOD[:1], "B", *GOOD[2:], "under no header"]],
        [[1, "typed", 3, 0.5, True, None, None, None]],  # XLSX cells
    ],
)
def test_problems_are_worded_by_the_row_loop(
    rows: list[list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = both(rows, monkeypatch)
    assert fast == slow


def test_kept_duplicates_and_blank_kept_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [GOOD, [], ["", ""], GOOD, ["p2", "B", *GOOD[2:]]]
    fast, slow = both(rows, monkeypatch, [True, True, True, True, False])
    assert fast == slow and fast[0] == "error"
    fast, slow = both(rows[:3] + rows[4:], monkeypatch, [True, True, True, False])
    assert fast == slow and fast[2] == {("p1",)}


VALID = {
    "age": ["", "7", "-3", "+4", "1_000", " 8 "],
    "score": ["", "0.5", "1e-3", "-0", "1_0", " 1.5"],
    "vip": ["", "yes", "No", "TRUE", "t", "F", "1", " yes ", "Y"],
    "born": ["", "2024-01-02", "20240102"],
    "seen": ["", "2024-01-02 03:04:05", "2024-01-02"],
    "meta": ["", "[1, 2]", '{"b": 2, "a": 1}'],
    "name": ["Bob", " spaced ", "#hashtag", "é"],
}


@pytest.mark.parametrize("seed", range(40))
def test_good_sheets_take_the_column_path_and_agree(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(rng.randint(1, 30)):
        row = [f"p{i}", *GOOD[1:]]
        for column, cells in VALID.items():
            if rng.random() < 0.4:
                row[HEADER.index(column)] = rng.choice(cells)
        rows.append(row)
    unchanged = [rng.random() < 0.5 for _ in rows] if seed % 2 else None
    raw = RawSheet(HEADER, rows, "people.csv", "r1")
    types = dict(SHEET.columns)
    assert validation._by_column(SHEET, raw, HEADER, types, unchanged) is not None
    fast, slow = both(rows, monkeypatch, unchanged)
    assert fast == slow


@pytest.mark.parametrize("seed", range(40))
def test_rows_read_as_lines_agree(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CSV without quotes comes as lines split on demand; kept rows give only their key."""
    rng = random.Random(seed)
    lines = []
    for i in range(rng.randint(0, 30)):
        row = [f"p{rng.randint(0, 40) if seed % 5 == 0 else i}", *GOOD[1:7], "3"]
        for column, cells in {**VALID, "meta": ["", "3", "true"]}.items():
            if rng.random() < 0.3:
                row[HEADER.index(column)] = rng.choice(cells)
        if rng.random() < 0.1:
            row = row[: rng.randint(0, len(row))]
        lines.append(",".join(row) if rng.random() > 0.05 else "")
    unchanged = [rng.random() < 0.6 for _ in lines] if seed % 2 else None
    as_lines = RawSheet(HEADER, SplitRows(lines), "people.csv", "r1", lines=lines)
    as_lists = [line.split(",") if line else [] for line in lines]
    assert list(as_lines.rows) == as_lists
    fast, slow = both(as_lists, monkeypatch, unchanged)

    assert outcome(SHEET, as_lines, unchanged) == fast == slow
