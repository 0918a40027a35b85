"""Sheet validation: every malformed input gets an error naming sheet, row, column and value."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from platform_kit.config import FileSource, SheetConfig
from platform_kit.errors import ValidationError
from platform_kit.sheets import RawSheet
from platform_kit.sheets.validate import validate

SHEET = SheetConfig(
    name="people",
    source=FileSource(Path("people.csv")),
    table="people",
    primary_key=("id",),
    columns={
        "id": "string",
        "name": "string",
        "age": "int",
        "score": "float",
        "vip": "bool",
        "born": "date",
        "seen": "datetime",
        "meta": "json",
    },
    required=("id", "name"),
)
HEADER = ["id", "name", "age", "score", "vip", "born", "seen", "meta"]
GOOD = ["p1", "Ann", "31", "0.5", "yes", "1990-02-03", "2024-01-02 03:04:05", '{"a": 1}']


def check(rows: list[list[Any]], header: list[Any] | None = None, sheet: SheetConfig = SHEET):  # type: ignore[no-untyped-def]
    return validate(
        sheet, RawSheet(header if header is not None else HEADER, rows, "people.csv", "r1")
    )


def test_good_rows_parse_to_types() -> None:
    typed = check([GOOD, ["p2", "Bob", "", "", "no", "", "", ""]])
    row = typed.rows[("p1",)]
    assert row == {
        "id": "p1",
        "name": "Ann",
        "age": 31,
        "score": 0.5,
        "vip": True,
        "born": dt.date(1990, 2, 3),
        "seen": dt.datetime(2024, 1, 2, 3, 4, 5),
        "meta": '{"a": 1}',
    }
    assert typed.rows[("p2",)]["age"] is None


def test_xlsx_native_values() -> None:
    typed = check(
        [["p1", "Ann", 31.0, 2, True, dt.datetime(1990, 2, 3), dt.datetime(2024, 1, 2), None]]
    )
    assert typed.rows[("p1",)]["age"] == 31 and typed.rows[("p1",)]["born"] == dt.date(1990, 2, 3)


def test_odd_but_legal_values_round_trip_exactly() -> None:
    odd = [
        "שלום עולם",
        "quote \" and ' both",
        "line one\nline two",
        "  padded  ",
        "emoji 🚀",
        "Robert'); DROP TABLE people;--",
        "tab\tinside",
        "مرحبا",
    ]
    typed = check([[f"p{i}", text] + [""] * 6 for i, text in enumerate(odd)])
    assert [typed.rows[(f"p{i}",)]["name"] for i in range(len(odd))] == odd


MALFORMED: list[tuple[str, list[Any] | None, list[list[Any]], str]] = [
    ("empty header", [], [GOOD], "header row \\(row 1\\) is empty"),
    ("blank header names", ["", "", ""], [["a", "b", "c"]], "row 1, column A: empty column name"),
    (
        "duplicate header",
        [*HEADER[:-1], "name"],
        [GOOD],
        "row 1, column H: duplicate column name 'name'",
    ),
    (
        "empty column name in middle",
        ["id", "", "name"],
        [["p1", "x", "Ann"]],
        "row 1, column B: empty column name",
    ),
    ("missing required column", ["id", "age"], [["p1", "3"]], "required column 'name' is missing"),
    (
        "sql-looking column name",
        [*HEADER, "x; DROP TABLE t"],
        [[*GOOD, "1"]],
        "not a safe SQL identifier",
    ),
    (
        "column name with space",
        [*HEADER, "first name"],
        [[*GOOD, "1"]],
        "'first name' is not a safe SQL identifier",
    ),
    (
        "duplicate key",
        None,
        [GOOD, GOOD],
        "row 3: duplicate primary key id='p1' \\(first in row 2\\)",
    ),
    ("empty key", None, [["", *GOOD[1:]]], "row 2, column 'id': empty, but required"),
    (
        "whitespace-only key is kept but required name empty",
        None,
        [["p1", "", *GOOD[2:]]],
        "row 2, column 'name': empty, but required",
    ),
    (
        "int type error",
        None,
        [["p1", "Ann", "thirty", *GOOD[3:]]],
        "row 2, column 'age': 'thirty' is not a whole number",
    ),
    ("int with fraction", None, [["p1", "Ann", "3.5", *GOOD[3:]]], "'3.5' is not a whole number"),
    (
        "float type error",
        None,
        [["p1", "Ann", "3", "high", *GOOD[4:]]],
        "column 'score': 'high' is not a number",
    ),
    ("NaN", None, [["p1", "Ann", "3", "NaN", *GOOD[4:]]], "'NaN' is not a finite number"),
    ("Inf", None, [["p1", "Ann", "3", "inf", *GOOD[4:]]], "'inf' is not a finite number"),
    (
        "negative Inf float",
        None,
        [["p1", "Ann", "3", float("-inf"), *GOOD[4:]]],
        "is not a finite number",
    ),
    (
        "bool type error",
        None,
        [["p1", "Ann", "3", "1", "maybe", *GOOD[5:]]],
        "'maybe' is not true/false",
    ),
    (
        "date type error",
        None,
        [["p1", "Ann", "3", "1", "y", "03/02/1990", *GOOD[6:]]],
        "'03/02/1990' is not a date",
    ),
    (
        "impossible date",
        None,
        [["p1", "Ann", "3", "1", "y", "1990-02-30", *GOOD[6:]]],
        "is not a date",
    ),
    (
        "datetime type error",
        None,
        [[*GOOD[:6], "yesterday", GOOD[7]]],
        "'yesterday' is not a date and time",
    ),
    ("json type error", None, [[*GOOD[:7], "{not json"]], "'{not json' is not valid JSON"),
    (
        "#REF! formula error",
        None,
        [["p1", "#REF!", *GOOD[2:]]],
        "column 'name': '#REF!' is a formula error",
    ),
    ("#N/A formula error", None, [["p1", "Ann", "#N/A", *GOOD[3:]]], "'#N/A' is a formula error"),
    (
        "#DIV/0! formula error",
        None,
        [["p1", "Ann", "3", "#DIV/0!", *GOOD[4:]]],
        "'#DIV/0!' is a formula error",
    ),
    (
        "#VALUE! in a key",
        None,
        [["#VALUE!", *GOOD[1:]]],
        "column 'id': '#VALUE!' is a formula error",
    ),
    (
        "1 MB cell",
        None,
        [["p1", "x" * 1_048_576, *GOOD[2:]]],
        "is 1,048,576 characters long; the limit is 50,000",
    ),
    (
        "control characters",
        None,
        [["p1", "bell\x07here", *GOOD[2:]]],
        "contains control characters",
    ),
    ("NUL byte", None, [["p1", "nul\x00", *GOOD[2:]]], "contains control characters"),
    (
        "value under no header",
        None,
        [[*GOOD, "stray"]],
        "row 2, column I: a value 'stray' under no header",
    ),
]


@pytest.mark.parametrize(
    ("header", "rows", "expected"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_input_is_named(
    header: list[Any] | None, rows: list[list[Any]], expected: str
) -> None:
    with pytest.raises(ValidationError, match=expected) as info:
        check(rows, header)
    assert "sheet 'people'" in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    rows = [["p1", "Ann", "x", *GOOD[3:]], ["p2", "Bob", "3", "NaN", *GOOD[4:]], GOOD, GOOD]
    with pytest.raises(ValidationError) as info:
        check(rows)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "sheet 'people', row 2, column 'age'",
        "sheet 'people', row 3, column 'score'",
        "sheet 'people', row 4",
        "sheet 'people', row 5",
    ]


def test_trailing_blank_rows_and_columns_are_ignored() -> None:
    typed = check([[*GOOD, "", None], ["", "", ""], [None] * 10, []], header=[*HEADER, "", None])
    assert list(typed.rows) == [("p1",)]


def test_renames_map_unsafe_headers() -> None:
    sheet = SheetConfig(
        name="s",
        source=FileSource(Path("s.csv")),
        table="s",
        primary_key=("id",),
        columns={"id": "string", "first_name": "string"},
        renames={"First Name": "first_name"},
    )
    typed = validate(sheet, RawSheet(["id", "First Name"], [["1", "Ann"]], "s.csv", "r"))
    assert typed.rows[("1",)] == {"id": "1", "first_name": "Ann"}


def test_undeclared_columns_sync_as_strings() -> None:
    typed = check([[*GOOD, "note"]], header=[*HEADER, "comment"])
    assert typed.undeclared == ["comment"] and typed.columns["comment"] == "string"


def test_corpus_size() -> None:
    assert len(MALFORMED) >= 25  # plus config, source and service cases elsewhere: >= 30 in all
