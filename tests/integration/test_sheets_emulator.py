"""The Sheets v4 / Drive v3 emulator itself: what real gspread and plain HTTP see from it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import gspread
import pytest
import requests

from platform_kit.config import GoogleSource, SheetConfig
from platform_kit.services import free_port
from platform_kit.sheets.google import GoogleSheetReader, google_session
from platform_kit.testing.sheets_emulator import SheetsEmulator

ROWS = [["id", "name", ""], ["a", "Ann", ""], ["b", "", ""], ["", "", ""]]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SheetsEmulator, str]]:
    emu = SheetsEmulator()
    url = emu.start()
    monkeypatch.setenv("PLATFORM_KIT_GOOGLE_API_URL", url)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    emu.put("KEY", {"Tab one": ROWS, "Second": [["x"]]}, title="Book")
    yield emu, url
    emu.stop()


def test_endpoints_over_http(emulator: tuple[SheetsEmulator, str]) -> None:
    _, url = emulator
    meta = requests.get(f"{url}/v4/spreadsheets/KEY?includeGridData=false", timeout=5).json()
    assert meta["properties"]["title"] == "Book"
    assert [s["properties"]["title"] for s in meta["sheets"]] == ["Tab one", "Second"]
    values = requests.get(f"{url}/v4/spreadsheets/KEY/values/'Tab one'", timeout=5).json()
    # As Google does: trailing empty cells and rows are left out.
    assert values["values"] == [["id", "name"], ["a", "Ann"], ["b"]]
    drive = requests.get(f"{url}/drive/v3/files/KEY?fields=modifiedTime", timeout=5).json()
    assert drive["modifiedTime"].endswith("Z")
    missing = requests.get(f"{url}/v4/spreadsheets/NOPE", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize("status", [404, 429, 500])
def test_injected_faults_then_recovery(emulator: tuple[SheetsEmulator, str], status: int) -> None:
    emu, url = emulator
    emu.fail(status, times=2)
    for _ in range(2):
        answer = requests.get(f"{url}/v4/spreadsheets/KEY", timeout=5)
        assert answer.status_code == status and answer.json()["error"]["code"] == status
    assert requests.get(f"{url}/v4/spreadsheets/KEY", timeout=5).status_code == 200


def test_real_gspread_reads_values_and_modified_time(
    emulator: tuple[SheetsEmulator, str],
) -> None:
    emu, _ = emulator
    client = gspread.Client(auth=None, session=google_session())  # type: ignore[arg-type]
    book = client.open_by_key("KEY")
    assert book.title == "Book"
    assert book.worksheet("Tab one").get_all_values()[:2] == [["id", "name"], ["a", "Ann"]]
    before = book.get_lastUpdateTime()
    time.sleep(0.01)
    emu.put("KEY", {"Tab one": [["id"], ["c"]]}, title="Book")
    assert client.open_by_key("KEY").get_lastUpdateTime() != before
    with pytest.raises(gspread.exceptions.SpreadsheetNotFound):
        client.open_by_key("NOPE")


def test_reader_defaults_to_the_first_worksheet(emulator: tuple[SheetsEmulator, str]) -> None:
    config = SheetConfig("s", GoogleSource("KEY"), "s", ("id",), {"id": "string"})
    raw = GoogleSheetReader().read(config)
    # gspread pads short rows to the sheet's width.
    assert raw.header == ["id", "name"] and raw.rows == [["a", "Ann"], ["b", ""]]
    assert raw.source == "KEY"


def test_runs_as_a_module_with_a_fixture(tmp_path: Path) -> None:
    fixture = tmp_path / "sheets.json"
    fixture.write_text(json.dumps({"K": {"title": "T", "worksheets": {"S": [["id"], ["1"]]}}}))
    port = free_port()
    command = [sys.executable, "-m", "platform_kit.testing.sheets_emulator"]
    command += ["--port", str(port), "--fixture", str(fixture)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert f"127.0.0.1:{port}" in server.stdout.readline()
        values = requests.get(f"http://127.0.0.1:{port}/v4/spreadsheets/K/values/S", timeout=5)
        assert values.json()["values"] == [["id"], ["1"]]
    finally:
        server.terminate()
        server.wait(timeout=10)
