"""Turn a raw sheet into typed rows, or a list of every problem found.

Rows are numbered as the analyst sees them in the sheet: the header is row 1. Empty cells are
NULL. Trailing blank rows and columns (what spreadsheet exports tend to carry) are ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter, methodcaller, not_
from typing import Any

from platform_kit.config import SheetConfig
from platform_kit.errors import ValidationError
from platform_kit.sheets import RawSheet
from platform_kit.sql import is_identifier
from platform_kit.store.base import Key, Row

MAX_CELL = 50_000  # Google Sheets' own limit on characters per cell
MAX_PROBLEMS = 50  # listed in the error; the count says how many more there were
FORMULA_ERRORS = (
    "#REF!",
    "#N/A",
    "#VALUE!",
    "#DIV/0!",
    "#NAME?",
    "#NULL!",
    "#NUM!",
    "#ERROR!",
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


@dataclass(frozen=True)
class TypedSheet:
    columns: dict[str, str]  # column -> kit type, in sheet order (declared types; new ones: string)
    rows: dict[Key, Row]  # primary key -> row
    undeclared: list[str]  # sheet columns not in platform.yaml (synced as string)
    # Keys of rows known unchanged since the last sync (``validate(unchanged=...)``): only their
    # key was parsed; they are in Dolt as they are, and not in ``rows``.
    kept: set[Key] = field(default_factory=set)


def column_of(sheet: SheetConfig, header: str) -> str:
    return sheet.renames.get(header, header)


def validate(
    sheet: SheetConfig, raw: RawSheet, unchanged: Sequence[bool] | None = None
) -> TypedSheet:
    """Parse every row of ``raw`` by the sheet's config.

    ``unchanged[i]`` true: ``raw.rows[i]`` is byte for byte a row that passed the last sync
    under the same header and config; only its key is parsed (for the duplicate check and the
    deletes), and it goes to ``kept``.

    Raises:
        ValidationError: listing every problem with sheet, row, column and value.
    """
    problems: list[str] = []
    where = f"sheet {sheet.name!r}"
    header = [_text(h).strip() for h in raw.header]
    width = len(header)
    while width and not header[width - 1] and all(_blank(r, width - 1) for r in raw.rows):
        width -= 1  # a trailing blank column
    header = header[:width]
    if not header:
        raise ValidationError(
            f"{where}: the header row (row 1) is empty", hint="row 1 must name the columns"
        )
    columns: list[str] = []
    for index, name in enumerate(header):
        letter = _letter(index)
        column = column_of(sheet, name)
        if not name:
            problems.append(f"{where}, row 1, column {letter}: empty column name")
        elif column in columns:
            problems.append(f"{where}, row 1, column {letter}: duplicate column name {name!r}")
        elif not is_identifier(column):
            problems.append(
                f"{where}, row 1, column {letter}: {name!r} is not a safe SQL "
                "identifier; map it to one with 'renames' in platform.yaml"
            )
        columns.append(column)
    for name in sheet.required:
        if name not in columns:
            problems.append(f"{where}: required column {name!r} is missing from row 1")
    if problems:
        raise _error(where, problems)

    types = {c: sheet.columns.get(c, "string") for c in columns}
    fast = _by_column(sheet, raw, columns, types, unchanged)
    if fast is not None:
        return fast
    parsers = {c: PARSERS[t] for c, t in types.items()}
    typed_columns = [c for c, t in types.items() if t != "string"]
    required = [(c, columns.index(c)) for c in sheet.required if c in types]
    rows: dict[Key, Row] = {}
    kept: set[Key] = set()
    key_at = [
        (c, columns.index(c), parsers[c], types[c] != "string")
        for c in sheet.primary_key
        if unchanged is not None and c in types
    ]
    # The common key, one text column, is taken straight from its cell.
    text_key = key_at[0][1] if len(key_at) == 1 and not key_at[0][3] else None
    first_seen: dict[Key, int] = {}
    for offset, cells in enumerate(raw.rows):
        number = offset + 2
        if not any(cells) and all(_blank(cells, i) for i in range(len(cells))):
            continue  # blank rows (trailing or not) carry no data
        if unchanged is not None and unchanged[offset]:
            cell = cells[text_key] if text_key is not None and text_key < len(cells) else None
            if isinstance(cell, str) and cell:
                key: Key = (cell,)
            else:
                key = _key_of(problems, where, number, cells, key_at)
            if key in first_seen:
                problems.append(
                    f"{where}, row {number}: duplicate primary key "
                    f"{_key_text(sheet, key)} (first in row {first_seen[key]})"
                )
            else:
                kept.add(key)
                first_seen[key] = number
            continue
        for extra in range(width, len(cells)):
            if not _blank(cells, extra):
                problems.append(
                    f"{where}, row {number}, column {_letter(extra)}: a value "
                    f"{_show(cells[extra])} under no header"
                )
        if _plain(cells):
            # Plain short text (every CSV and gspread row, nearly always) needs none of the
            # per-cell checks: text columns are taken as they are, the others parsed.
            row = {c: v or None for c, v in zip(columns, cells, strict=False)}
            if len(cells) < width:
                row.update((c, None) for c in columns[len(cells) :])
            for column in typed_columns:
                value = row[column]
                if value is not None:
                    row[column] = _cell(problems, where, number, column, parsers[column], value)
        else:
            row = {
                column: _cell(
                    problems,
                    where,
                    number,
                    column,
                    parsers[column],
                    cells[index] if index < len(cells) else None,
                    _parse,
                )
                for index, column in enumerate(columns)
            }
        for column, index in required:
            if _blank(cells, index):
                problems.append(f"{where}, row {number}, column {column!r}: empty, but required")
        key = tuple(row.get(k) for k in sheet.primary_key)
        if any(k is None for k in key):
            continue  # reported above: key columns are required
        if key in first_seen:
            problems.append(
                f"{where}, row {number}: duplicate primary key "
                f"{_key_text(sheet, key)} (first in row {first_seen[key]})"
            )
            continue
        rows[key] = row
        first_seen[key] = number
    if problems:
        raise _error(where, problems)
    undeclared = [c for c in columns if c not in sheet.columns]
    return TypedSheet(columns=types, rows=rows, undeclared=undeclared, kept=kept)


def _by_column(
    sheet: SheetConfig,
    raw: RawSheet,
    columns: list[str],
    types: dict[str, str],
    unchanged: Sequence[bool] | None,
) -> TypedSheet | None:
    """The common case, a column at a time: every row plain text, every value good.

    It gives exactly what the row-by-row loop gives, or None whenever that loop may say more
    (a problem, a duplicate key, a cell that needs the careful checks): then the loop runs and
    words every problem in sheet order.
    """
    width = len(columns)
    given = raw.rows
    # Rows read as lines (raw.lines): the kept ones are not split, only their key is taken.
    lines = raw.lines if raw.lines is not None and len(raw.lines) == len(given) else None
    old: list[Any] = []
    if unchanged is not None:
        fresh = [given[i] for i in compress(range(len(given)), map(not_, unchanged))]
        old = list(compress(given if lines is None else lines, unchanged))
    else:
        fresh = list(given)
    try:
        texts = list(map("\n".join, fresh))  # TypeError: typed cells (XLSX), checked one by one
    except TypeError:
        return None
    blob = "\n".join(texts).encode()
    if len(blob.translate(None, _CONTROL_BYTES)) != len(blob):
        return None  # a control character (UTF-8 holds them as these bytes only)
    formulas = b"#" in blob  # every formula error starts with "#"
    long = bool(texts) and max(map(len, texts)) > MAX_CELL  # no cell longer than its row
    fresh = list(filter(any, fresh))  # blank rows carry no data
    if set(map(len, fresh)) - {width}:
        if any(any(cells[width:]) for cells in fresh):
            return None  # a value under no header
        fresh = [[*cells[:width], *[""] * (width - len(cells))] for cells in fresh]
    values: list[list[Any]] = []
    for index, column in enumerate(columns):
        cells = list(map(itemgetter(index), fresh))
        if column in sheet.required and "" in cells:
            return None
        if long and max(map(len, cells), default=0) > MAX_CELL:
            return None
        if formulas and any(c.strip() in FORMULA_ERRORS for c in cells if "#" in c):
            return None
        parsed = _column(types[column], cells)
        if parsed is None:
            return None
        values.append(parsed)
    at = [columns.index(k) for k in sheet.primary_key]
    keys: list[Key] = list(zip(*(values[i] for i in at), strict=True))
    if not at or any(None in values[i] for i in at):
        return None  # a row without its key (skipped, or reported, by the loop)
    rows = dict(
        zip(
            keys,
            map(dict, map(zip, repeat(columns), zip(*values, strict=True))),
            strict=True,
        )
    )
    if len(rows) != len(keys):
        return None  # a duplicate key
    kept: set[Key] = set()
    if old:
        if len(at) != 1 or types[sheet.primary_key[0]] != "string":
            return None  # keys of other types: parsed row by row
        split = methodcaller("split", ",", at[0] + 1)  # the cells up to the key's
        records = filter(None, old) if lines is None else map(split, filter(None, old))
        try:
            olds = list(zip(filter(None, map(itemgetter(at[0]), records)), strict=False))
        except IndexError:
            return None  # a short row
        kept = set(olds)
        if len(kept) != len(olds) or not kept.isdisjoint(rows):
            return None
    undeclared = [c for c in columns if c not in sheet.columns]
    return TypedSheet(columns=types, rows=rows, undeclared=undeclared, kept=kept)


_BOOLS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
_BOOL_CELLS = {
    "": None,
    **{spelling: value for word, value in _BOOLS.items() for spelling in (word, word.upper())},
    **{word.title(): value for word, value in _BOOLS.items()},
}


def _column(kind: str, cells: Sequence[str]) -> list[Any] | None:
    """One column's text cells parsed as their parser would ('' is NULL); None: some cell fails.

    Where a plain conversion accepts the text, the parser gives the same value (it only adds
    ways to accept more: commas, spaces, other spellings), so the rest go to the parser.
    """
    if kind == "bool":  # the common spellings by lookup, the others as the parser reads them
        try:
            return list(map(_BOOL_CELLS.__getitem__, cells))
        except KeyError:
            pass
    full = "" not in cells  # no NULL: the conversion maps straight over the column
    try:
        if kind == "string":
            return list(cells) if full else [c or None for c in cells]
        if kind == "int":
            return list(map(int, cells)) if full else [int(c) if c else None for c in cells]
        if kind == "float":
            numbers = list(map(float, cells)) if full else [float(c) if c else None for c in cells]
            finite = all(math.isfinite(n) for n in numbers if n is not None)
            return numbers if finite else None
        if kind == "bool":
            return [_BOOLS[c.strip().lower()] if c else None for c in cells]
        if kind == "date":
            day = dt.date.fromisoformat
            return list(map(day, cells)) if full else [day(c) if c else None for c in cells]
        if kind == "datetime":
            stamps = [dt.datetime.fromisoformat(c) if c else None for c in cells]
            naive = all(s.tzinfo is None for s in stamps if s is not None)
            return stamps if naive else None
        parser = PARSERS[kind]
        return [parser(c) if c else None for c in cells]
    except (ValueError, KeyError):
        return None


def _key_of(
    problems: list[str],
    where: str,
    number: int,
    cells: list[Any],
    key_at: list[tuple[str, int, Callable[[Any], Any], bool]],
) -> Key:
    """A row's primary key, parsed exactly as the whole row would have it.

    The row passed before, so the checks that only reject (formula errors, control characters,
    length) cannot fire: a text cell parses the same on the plain path and the careful one.
    """
    values = []
    for column, index, parser, typed in key_at:
        value = cells[index] if index < len(cells) else None
        if isinstance(value, str):
            value = value or None
            if value is not None and typed:
                value = _cell(problems, where, number, column, parser, value)
        else:
            value = _cell(problems, where, number, column, parser, value, _parse)
        values.append(value)
    return tuple(values)


def _error(where: str, problems: list[str]) -> ValidationError:
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS} more")
    count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
    return ValidationError(
        f"{where}: {count}", shown, hint="nothing was written; fix the sheet and sync again"
    )


def _cell(
    problems: list[str],
    where: str,
    number: int,
    column: str,
    parser: Callable[[Any], Any],
    value: Any,
    parse: Callable[[Callable[[Any], Any], Any], Any] | None = None,
) -> Any:
    """The parsed cell, or None with the problem recorded."""
    try:
        return parse(parser, value) if parse else parser(value)
    except ValueError as exc:
        problems.append(f"{where}, row {number}, column {column!r}: {_show(value)} {exc}")
        return None


def _plain(cells: list[Any]) -> bool:
    """Whether every cell is text that needs none of the checks in :func:`_parse`."""
    try:
        joined = "\n".join(cells)
    except TypeError:  # a typed cell (XLSX): check each one
        return False
    # Every formula error starts with "#"; a row within MAX_CELL has no cell over it.
    return len(joined) <= MAX_CELL and "#" not in joined and not _CONTROL.search(joined)


def _parse(parser: Callable[[Any], Any], value: Any) -> Any:
    if value is None or (isinstance(value, str) and value == ""):
        return None
    if isinstance(value, str):
        if value.strip() in FORMULA_ERRORS:
            raise ValueError("is a formula error; fix the formula in the sheet")
        if len(value) > MAX_CELL:
            raise ValueError(f"is {len(value):,} characters long; the limit is {MAX_CELL:,}")
        if _CONTROL.search(value):
            raise ValueError("contains control characters; remove them")
    return parser(value)


def parse_string(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # XLSX stores typed-in numbers as floats
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError("is not a whole number")
    text = str(value).strip().replace(",", "").replace("_", "")
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("is not a whole number") from None
        if number.is_integer():
            return int(number)
        raise ValueError("is not a whole number") from None


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("is not a number")
    try:
        number = (
            float(str(value).strip().replace(",", "")) if isinstance(value, str) else float(value)
        )
    except (TypeError, ValueError):
        raise ValueError("is not a number") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError("is not a finite number (NaN and Inf cannot be stored)")
    return number


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("is not true/false (also accepted: yes/no, 1/0)")


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return (
            dt.date.fromisoformat(str(value).strip()[:10])
            if len(str(value).strip()) <= 10
            else dt.datetime.fromisoformat(str(value).strip()).date()
        )
    except ValueError:
        raise ValueError("is not a date (YYYY-MM-DD)") from None


def parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("is not a date and time (YYYY-MM-DD HH:MM:SS)") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def parse_json(value: Any) -> str:
    try:
        return json.dumps(json.loads(str(value)), sort_keys=True, ensure_ascii=False)
    except ValueError:
        raise ValueError("is not valid JSON") from None


PARSERS: dict[str, Callable[[Any], Any]] = {
    "string": parse_string,
    "int": parse_int,
    "float": parse_float,
    "bool": parse_bool,
    "date": parse_date,
    "datetime": parse_datetime,
    "json": parse_json,
}


def _text(value: Any) -> str:
    return "" if value is None else parse_string(value)


def _blank(cells: list[Any], index: int) -> bool:
    return index >= len(cells) or cells[index] is None or cells[index] == ""


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _key_text(sheet: SheetConfig, key: Key) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(sheet.primary_key, key, strict=True))
