"""CSV and XLSX exports of a sheet, as analysts download them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from platform_kit.config import FileSource, SheetConfig
from platform_kit.errors import SourceError
from platform_kit.sheets import RawSheet, SheetReader


class FileSheetReader(SheetReader):
    def __init__(self, root: Path | None = None) -> None:
        self.root = root  # paths in messages are shown relative to it when possible

    def read(self, sheet: SheetConfig) -> RawSheet:
        assert isinstance(sheet.source, FileSource)
        path = sheet.source.file
        if not path.is_file():
            raise SourceError(
                f"sheet {sheet.name!r}: file {path} does not exist",
                hint="export the sheet there or fix 'source.file' in platform.yaml",
            )
        revision = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        lines: list[str] | None = None
        if path.suffix.lower() != ".csv":
            table: Sequence[list[Any]] = _read_xlsx(sheet, path)
        else:
            table, lines = _read_csv(sheet, path)
        header, rows = (table[0], table[1:]) if table else ([], [])
        return RawSheet(
            header=header,
            rows=rows,
            source=self._display(path),
            revision=revision,
            lines=lines[1:] if lines else None,
        )

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root or Path.cwd()))
        except ValueError:
            return str(path)


# csv's default cap (128 KiB a field) would hide validation's clearer "cell too long" error.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


def _read_csv(sheet: SheetConfig, path: Path) -> tuple[Sequence[list[Any]], list[str] | None]:
    """The file's records, and (without quotes, one line per record) their lines."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"sheet {sheet.name!r}: {path} is not UTF-8 text (byte {exc.start})",
            hint="export the CSV as UTF-8",
        ) from exc
    if '"' not in text:
        lines = _lines(text)
        return SplitRows(lines), lines
    try:
        return list(csv.reader(io.StringIO(text, newline=""))), None
    except csv.Error as exc:
        raise SourceError(f"sheet {sheet.name!r}: {path} is not valid CSV: {exc}") from exc


def split_csv(text: str) -> list[list[str]]:
    """CSV text without a quote character, as :func:`csv.reader` reads it, faster.

    Without quotes every comma ends a field and every line break (CR, LF, CRLF) a record; an
    empty line is a record of no fields.
    """
    return _split(_lines(text))


def _lines(text: str) -> list[str]:
    if text.isascii() and not any(c in text for c in _OTHER_BREAKS):
        return text.splitlines()  # one pass; it also breaks at these, which csv does not
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the break that ends the last record
    return lines


def _split(lines: list[str]) -> list[list[str]]:
    return [line.split(",") if line else [] for line in lines]


def _cells(line: str) -> list[str]:
    return line.split(",") if line else []


class SplitRows(Sequence[list[str]]):
    """The records of a CSV without quotes, each split at its commas when it is asked for:
    a sync that knows most rows unchanged (by their lines' digests) splits only the others."""

    __slots__ = ("lines",)

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, index: int) -> list[str]: ...
    @overload
    def __getitem__(self, index: slice) -> SplitRows: ...
    def __getitem__(self, index: int | slice) -> list[str] | SplitRows:
        if isinstance(index, slice):
            return SplitRows(self.lines[index])
        return _cells(self.lines[index])

    def __iter__(self) -> Iterator[list[str]]:
        return map(_cells, self.lines)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SplitRows | list):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_OTHER_BREAKS = "\v\f\x1c\x1d\x1e"  # str.splitlines' line breaks in ASCII, besides CR and LF


def _read_xlsx(sheet: SheetConfig, path: Path) -> list[list[Any]]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    assert isinstance(sheet.source, FileSource)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise SourceError(
            f"sheet {sheet.name!r}: {path} is not a readable .xlsx file: {exc}"
        ) from exc
    try:
        name = sheet.source.worksheet or book.sheetnames[0]
        if name not in book.sheetnames:
            raise SourceError(
                f"sheet {sheet.name!r}: {path} has no worksheet {name!r} "
                f"(it has {', '.join(book.sheetnames)})",
                hint="fix 'source.worksheet' in platform.yaml",
            )
        return [list(row) for row in book[name].iter_rows(values_only=True)]
    finally:
        book.close()
