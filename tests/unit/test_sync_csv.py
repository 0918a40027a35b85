"""CSV without quotes is split directly (issue 17): exactly the rows csv.reader gives."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from platform_kit.config import FileSource, SheetConfig
from platform_kit.sheets.files import FileSheetReader, split_csv

ASCII = ["a", "b c", "", ",", "\n", "\r", "\r\n", "\x00", " ", "\t"]
PIECES = [*ASCII, "é", "\x85", "\u2028", "\x0b", "\x0c", "\x1c", "\x1e"]


@pytest.mark.parametrize("seed", range(300))
def test_split_reads_what_csv_reads(seed: int) -> None:
    rng = random.Random(seed)
    pieces = ASCII if seed % 2 else PIECES  # ASCII alone: the one-pass split
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
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
