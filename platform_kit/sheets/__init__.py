"""Sheet sources: what analysts edit, read as a header and rows of raw cell values.

A :class:`SheetReader` reads one configured sheet (a CSV or XLSX export, or a Google
spreadsheet through gspread) into a :class:`RawSheet`; :mod:`platform_kit.sheets.validate` turns
that into typed rows. Sources only read: they never decide what a value means.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform_kit.config import FileSource, GoogleSource, SheetConfig


@dataclass(frozen=True)
class RawSheet:
    """A sheet as read: row 1 is ``header``; ``rows[i]`` is sheet row ``i + 2``."""

    header: list[Any]
    rows: Sequence[list[Any]]
    source: str  # e.g. "sheets/customers.csv" or "<spreadsheet key>/Sheet1"
    revision: str  # the file's mtime, or the spreadsheet's modifiedTime
    # Each row's text as the source holds it, where that is one line per row (a CSV without
    # quotes): ``rows[i]`` is ``lines[i]`` split at commas. Sync hashes these, not the cells.
    lines: list[str] | None = None


class SheetReader(ABC):
    """Reads one kind of sheet source."""

    @abstractmethod
    def read(self, sheet: SheetConfig) -> RawSheet:
        """Read the sheet.

        Raises:
            SourceError: the source is missing, unreadable, or refuses access.
        """

    def revision(self, sheet: SheetConfig) -> str | None:
        """What identifies the source's current content, asked cheaply without reading it.

        None: this source cannot tell (then sync reads it every time). Files answer their
        bytes' digest (computed by sync itself), so only remote sources override this.
        """
        return None


def reader_for(sheet: SheetConfig, root: Path | None = None) -> SheetReader:
    """The reader for a sheet's configured source (file names are shown relative to ``root``)."""
    if isinstance(sheet.source, GoogleSource):
        from platform_kit.sheets.google import GoogleSheetReader

        return GoogleSheetReader()
    assert isinstance(sheet.source, FileSource)
    from platform_kit.sheets.files import FileSheetReader

    return FileSheetReader(root)
