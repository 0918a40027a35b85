"""CSV and XLSX sheet sources: what analysts export, read as header and raw rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from platform_kit.config import FileSource, GoogleSource, SheetConfig
from platform_kit.errors import SourceError
from platform_kit.sheets import reader_for
from platform_kit.sheets.files import FileSheetReader
from platform_kit.sheets.google import GoogleSheetReader
from platform_kit.sheets.validate import validate


def sheet(path: Path, worksheet: str | None = None) -> SheetConfig:
    return SheetConfig(
        name="people",
        source=FileSource(path, worksheet),
        table="people",
        primary_key=("id",),
        columns={"id": "string", "n": "int", "when": "date"},
        required=("id",),
    )


def test_csv_with_bom_quotes_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes('\ufeffid,n,when\r\np1,3,2024-01-02\r\n"p,2","4","2024-02-03"\r\n'.encode())
    path.write_bytes(path.read_bytes() + b'"p\n3",5,\r\n')
    raw = FileSheetReader(tmp_path).read(sheet(path))
    assert raw.header == ["id", "n", "when"]
    assert raw.rows == [["p1", "3", "2024-01-02"], ["p,2", "4", "2024-02-03"], ["p\n3", "5", ""]]
    assert raw.source == "people.csv"  # relative to the project root
    assert raw.revision.endswith("Z") and raw.revision[:4].isdigit()


def test_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"people\.csv does not exist"):
        FileSheetReader(tmp_path).read(sheet(tmp_path / "people.csv"))
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,n\nn\xe9,1\n".encode("latin-1"))
    with pytest.raises(SourceError, match="not UTF-8"):
        FileSheetReader(tmp_path).read(sheet(path))


def test_empty_csv_has_no_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    raw = FileSheetReader().read(sheet(path))
    assert raw.header == [] and raw.rows == []


def workbook(path: Path, tabs: dict[str, list[list[object]]]) -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in tabs.items():
        tab = book.create_sheet(title)
        for row in rows:
            tab.append(row)
    book.save(path)


def test_xlsx_worksheet_and_native_values(tmp_path: Path) -> None:
    path = tmp_path / "people.xlsx"
    rows: list[list[object]] = [["id", "n", "when"], ["p1", 3, dt.datetime(2024, 1, 2)]]
    workbook(path, {"Other": [["x"]], "Data": rows})
    config = sheet(path, "Data")
    raw = FileSheetReader().read(config)
    assert raw.header == ["id", "n", "when"]
    typed = validate(config, raw)
    assert typed.rows[("p1",)] == {"id": "p1", "n": 3, "when": dt.date(2024, 1, 2)}
    # No worksheet named: the first one.
    assert FileSheetReader().read(sheet(path)).header == ["x"]


def test_xlsx_missing_worksheet_and_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "people.xlsx"
    workbook(path, {"Data": [["id"]]})
    with pytest.raises(SourceError, match="has no worksheet 'Nope' \\(it has Data\\)"):
        FileSheetReader().read(sheet(path, "Nope"))
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a zip")
    with pytest.raises(SourceError, match=r"not a readable \.xlsx"):
        FileSheetReader().read(sheet(bad))


def test_reader_for_picks_the_source_kind(tmp_path: Path) -> None:
    assert isinstance(reader_for(sheet(tmp_path / "a.csv")), FileSheetReader)
    google = SheetConfig("g", GoogleSource("KEY", "Tab"), "g", ("id",), {"id": "string"})
    assert isinstance(reader_for(google), GoogleSheetReader)
    assert google.source.id == "KEY/Tab"
