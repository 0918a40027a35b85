"""CSV without quotes is split directly (issue 17): exactly the rows csv.reader gives."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from platform_kit.config import FileSource, SheetConfig
from platform_kit.sheets.files import FileSheetReader, split_csv

PIECES = ["a", "b c", "", ",", "\n", "\r", "\r\n", "é", "\x85", "\u2028", "\x0b", "\x00", " "]


@pytest.mark.parametrize("seed", range(200))
def test_split_reads_what_csv_reads(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
    assert split_csv(text) == list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    "text", ['id,name\r\n1,"a, b"\r\n', "id,name\n1,x\n", "\ufeffid\n1\n", 'id\n"multi\nline"\n']
)
def test_files_read_the_same_either_way(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(text.encode())
    sheet = SheetConfig("s", FileSource(path), "s", ("id",), {"id": "string"})
    raw = FileSheetReader(tmp_path).read(sheet)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        expected = list(csv.reader(handle))
    assert [raw.header, *raw.rows] == expected
