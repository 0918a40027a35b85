"""Sync's pure parts: the commit message other tools parse, value normalization, the report."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from platform_kit.sync import SheetSync, SyncReport, _norm, commit_message

# The format in docs/architecture.md, as the lineage and watch code parse it.
MESSAGE = re.compile(
    r"^sync (?P<sheet>\S+): \+(?P<a>\d+) ~(?P<c>\d+) -(?P<d>\d+) rows "
    r"\(source (?P<source>.+)@(?P<revision>[^@]+)\)$"
)


def test_commit_message_format() -> None:
    text = commit_message("customers", 3, 0, 1, "sheets/customers.csv", "2024-01-02T03:04:05Z")
    assert text == (
        "sync customers: +3 ~0 -1 rows (source sheets/customers.csv@2024-01-02T03:04:05Z)"
    )
    match = MESSAGE.match(text)
    assert match and match["sheet"] == "customers" and match["revision"] == "2024-01-02T03:04:05Z"


def test_values_read_back_from_dolt_compare_equal_to_the_sheet() -> None:
    assert _norm("bool", 1) == _norm("bool", True)
    assert _norm("float", Decimal("0.5")) == _norm("float", 0.5)
    assert _norm("int", 3) == _norm("int", 3.0)
    assert _norm("json", '{"b": 1, "a": 2}') == _norm("json", '{"a":2,"b":1}')
    assert _norm("date", dt.datetime(2024, 1, 2, 0, 0)) == dt.date(2024, 1, 2)
    assert _norm("string", None) is None


def test_report_json_is_plain() -> None:
    result = SheetSync("s", "t", "sheets/s", "s.csv", "r1", added=1, message="m")
    result.samples = {"added": [{"id": "a", "day": dt.date(2024, 1, 2)}]}
    body = SyncReport([result], dry_run=True).to_json()
    assert body["dry_run"] is True
    assert body["sheets"][0]["samples"]["added"] == [{"id": "a", "day": "2024-01-02"}]
    assert body["sheets"][0]["commit"] is None and result.has_changes
