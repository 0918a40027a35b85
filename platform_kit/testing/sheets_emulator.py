"""A local emulator of the Google Sheets v4 and Drive v3 endpoints that gspread calls.

The real gspread client talks to it over a real socket when ``PLATFORM_KIT_GOOGLE_API_URL``
points here. It serves spreadsheets from fixture data, reports ``modifiedTime``, and can be told
to answer errors (404, 429, 500, 401...) for the next requests, to test errors and retries.

    python -m platform_kit.testing.sheets_emulator --port 8765 --fixture sheets.json

where the fixture is ``{"<key>": {"title": ..., "worksheets": {"Sheet1": [[...], ...]}}}``.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse


@dataclass
class Spreadsheet:
    title: str
    worksheets: dict[str, list[list[Any]]]
    modified: str = field(
        default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    )


class SheetsEmulator:
    """Holds the fixture data and the injected faults; serve it with :meth:`start`."""

    def __init__(self) -> None:
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.requests: list[str] = []
        self._faults: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def put(
        self, key: str, worksheets: dict[str, Sequence[Sequence[Any]]], title: str = ""
    ) -> None:
        """Create or replace a spreadsheet; its modifiedTime moves on."""
        with self._lock:
            revision = len(self.requests)
            self.spreadsheets[key] = Spreadsheet(
                title or key,
                {k: [list(r) for r in v] for k, v in worksheets.items()},
                modified=datetime.now(UTC).strftime(f"%Y-%m-%dT%H:%M:%S.{revision % 1000:03d}Z"),
            )

    def fail(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with HTTP ``status``."""
        with self._lock:
            self._faults.extend([status] * times)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; returns the base URL."""
        emulator = self

        class Handler(_Handler):
            owner = emulator

        self._server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://{host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def next_fault(self) -> int | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None


class _Handler(BaseHTTPRequestHandler):
    owner: SheetsEmulator

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.owner.requests.append(self.path)
        fault = self.owner.next_fault()
        if fault is not None:
            return self._error(fault, "injected fault")
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts[:2] == ["v4", "spreadsheets"] and len(parts) >= 3:
            book = self.owner.spreadsheets.get(parts[2])
            if book is None:
                return self._error(404, f"Requested entity was not found: {parts[2]}")
            if len(parts) == 3:
                return self._send(200, _metadata(parts[2], book))
            if len(parts) == 5 and parts[3] == "values":
                title = parts[4].split("!")[0].strip("'").replace("''", "'")
                if title not in book.worksheets:
                    return self._error(400, f"Unable to parse range: {parts[4]}")
                return self._send(
                    200,
                    {
                        "range": parts[4],
                        "majorDimension": "ROWS",
                        "values": _trim(book.worksheets[title]),
                    },
                )
        if parts[:3] == ["drive", "v3", "files"] and len(parts) == 4:
            book = self.owner.spreadsheets.get(parts[3])
            if book is None:
                return self._error(404, f"File not found: {parts[3]}")
            return self._send(
                200, {"id": parts[3], "name": book.title, "modifiedTime": book.modified}
            )
        return self._error(404, f"not emulated: {url.path}")

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        names = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        self._send(
            status,
            {"error": {"code": status, "message": message, "status": names.get(status, "UNKNOWN")}},
        )


def _metadata(key: str, book: Spreadsheet) -> dict[str, Any]:
    sheets = [
        {
            "properties": {
                "sheetId": i,
                "title": title,
                "index": i,
                "sheetType": "GRID",
                "gridProperties": {
                    "rowCount": max(len(rows), 1),
                    "columnCount": max((len(r) for r in rows), default=1),
                },
            }
        }
        for i, (title, rows) in enumerate(book.worksheets.items())
    ]
    return {
        "spreadsheetId": key,
        "properties": {"title": book.title, "locale": "en_US"},
        "sheets": sheets,
        "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{key}",
    }


def _trim(rows: list[list[Any]]) -> list[list[str]]:
    """As the real API: values formatted as strings, trailing empty cells and rows left out."""
    out = [["" if v is None else str(v) for v in row] for row in rows]
    for row in out:
        while row and row[-1] == "":
            row.pop()
    while out and not out[-1]:
        out.pop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fixture", help="JSON: {key: {title, worksheets: {name: rows}}}")
    args = parser.parse_args()
    emulator = SheetsEmulator()
    if args.fixture:
        with open(args.fixture, encoding="utf-8") as handle:
            for key, book in json.load(handle).items():
                emulator.put(key, book["worksheets"], book.get("title", key))
    url = emulator.start(port=args.port)
    print(f"Sheets emulator at {url} (set PLATFORM_KIT_GOOGLE_API_URL={url})", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
