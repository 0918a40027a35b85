"""Sync on real Dolt: CSV, XLSX, and gspread against the Sheets emulator over a real socket."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from platform_kit import data
from platform_kit.config import Config, load_config
from platform_kit.errors import MergeConflictError, SourceError, ValidationError
from platform_kit.store.base import Store
from platform_kit.store.dolt import DoltStore
from platform_kit.sync import sync
from platform_kit.testing.sheets_emulator import SheetsEmulator
from tests.conftest import Services

HEADER = ["customer_id", "name", "active"]
ROWS = [["acme", "Acme", "true"], ["globex", "Globex", "false"], ["initech", "Initech", "yes"]]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


def project(root: Path, services: Services, sheets: str) -> tuple[Config, Store]:
    database = f"sync_{uuid.uuid4().hex[:10]}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(
        f"project: t\ndolt: {{database: {database}, server: "
        f"'mysql://root@{services.dolt.host}:{services.dolt.port}'}}\n"
        f"mlflow: {{tracking_uri: '{services.mlflow_uri}'}}\nsheets:\n{sheets}"
    )
    config = load_config(root / "platform.yaml")
    store = DoltStore(services.dolt.host, services.dolt.port, "root", "", database)
    store.create_database()
    return config, store


CUSTOMERS = """\
  - name: customers
    source: {file: customers.csv}
    primary_key: [customer_id]
    columns: {customer_id: string, name: string, active: bool}
"""


@pytest.fixture
def csv_project(tmp_path: Path, services: Services) -> tuple[Config, Store, Path]:
    config, store = project(tmp_path, services, CUSTOMERS)
    write_csv(tmp_path / "customers.csv", ROWS)
    return config, store, tmp_path / "customers.csv"


def heads(store: Store) -> dict[str, str]:
    return store.branches()


def test_first_sync_resync_and_edit(csv_project: tuple[Config, Store, Path]) -> None:
    config, store, path = csv_project
    first = sync(config, store).sheets[0]
    assert first.branch == "sheets/customers" and first.commit
    assert (first.added, first.changed, first.deleted) == (3, 0, 0)
    log = store.log("sheets/customers", limit=1)[0]
    assert log.hash == first.commit
    assert log.message.startswith("sync customers: +3 ~0 -0 rows (source customers.csv@")
    assert store.schema("customers", first.commit).primary_key == ("customer_id",)  # type: ignore[union-attr]
    assert store.resolve("main") != first.commit  # main is untouched until a merge

    before = heads(store)
    again = sync(config, store).sheets[0]
    assert again.commit is None and not again.has_changes and heads(store) == before

    write_csv(
        path,
        [["acme", "Acme Corp", "true"], ["initech", "Initech", "yes"], ["hooli", "Hooli", "1"]],
    )
    edit = sync(config, store).sheets[0]
    assert (edit.added, edit.changed, edit.deleted) == (1, 1, 1)
    (diff,) = store.diff(first.commit, edit.commit)  # type: ignore[arg-type]
    assert [c.key for c in diff.modified] == [("acme",)] and [c.key for c in diff.deleted] == [
        ("globex",)
    ]

    merged = data.merge(config, store, "sheets/customers")
    assert merged.changed and store.resolve("main") == merged.commit
    rows = store.read_table("customers", "main")
    assert [(r["customer_id"], r["name"], bool(r["active"])) for r in rows] == [
        ("acme", "Acme Corp", True),
        ("hooli", "Hooli", True),
        ("initech", "Initech", True),
    ]


def test_dry_run_writes_nothing(csv_project: tuple[Config, Store, Path]) -> None:
    config, store, _ = csv_project
    before = heads(store)
    report = sync(config, store, dry_run=True)
    assert report.sheets[0].added == 3 and report.sheets[0].commit is None
    assert heads(store) == before  # not even the branch is created


def test_branch_main(csv_project: tuple[Config, Store, Path]) -> None:
    config, store, _ = csv_project
    result = sync(config, store, branch="main").sheets[0]
    assert store.resolve("main") == result.commit and "sheets/customers" not in store.branches()


def test_invalid_sheet_writes_nothing(csv_project: tuple[Config, Store, Path]) -> None:
    config, store, path = csv_project
    sync(config, store)
    before = heads(store)
    write_csv(path, [["acme", "Acme", "perhaps"], ["acme", "Again", "true"], ["", "Nobody", "no"]])
    with pytest.raises(ValidationError) as info:
        sync(config, store)
    assert len(info.value.problems) == 3
    assert heads(store) == before


def test_schema_changes(tmp_path: Path, services: Services) -> None:
    config, store = project(tmp_path, services, CUSTOMERS)
    write_csv(tmp_path / "customers.csv", ROWS)
    sync(config, store)
    # A new declared column: added to the table in the same commit.
    text = (
        (tmp_path / "platform.yaml")
        .read_text()
        .replace("active: bool}", "active: bool, tier: int}")
    )
    (tmp_path / "platform.yaml").write_text(text)
    config = load_config(tmp_path / "platform.yaml")
    write_csv(tmp_path / "customers.csv", [[*r, "2"] for r in ROWS], [*HEADER, "tier"])
    result = sync(config, store).sheets[0]
    assert result.new_columns == ["tier"] and result.changed == 3
    assert store.schema("customers", "sheets/customers").columns["tier"] == "int"  # type: ignore[union-attr]
    # A column removed from the sheet is an error.
    write_csv(
        tmp_path / "customers.csv", [[*r[:2], "2"] for r in ROWS], ["customer_id", "name", "tier"]
    )
    with pytest.raises(ValidationError, match="active"):
        sync(config, store)
    # A type change is an error that says what to do.
    (tmp_path / "platform.yaml").write_text(text.replace("tier: int", "tier: float"))
    write_csv(tmp_path / "customers.csv", [[*r, "2"] for r in ROWS], [*HEADER, "tier"])
    with pytest.raises(ValidationError, match=r"'tier' is int in Dolt .* but float"):
        sync(load_config(tmp_path / "platform.yaml"), store)


def test_xlsx_and_odd_values_round_trip(tmp_path: Path, services: Services) -> None:
    config, store = project(
        tmp_path,
        services,
        """\
  - name: examples
    source: {file: examples.xlsx, worksheet: Data}
    primary_key: [example_id]
    columns: {example_id: string, text: string, weight: float}
""",
    )
    odd = ["שלום", 'say "hi"', "two\nlines", "emoji 🚀", "Robert'); DROP TABLE examples;--"]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"  # type: ignore[union-attr]
    sheet.append(["example_id", "text", "weight"])  # type: ignore[union-attr]
    for i, text in enumerate(odd):
        sheet.append([f"e{i}", text, i + 0.5])  # type: ignore[union-attr]
    book.save(tmp_path / "examples.xlsx")
    result = sync(config, store, branch="main").sheets[0]
    assert result.added == len(odd)
    assert [r["text"] for r in store.read_table("examples", "main")] == odd
    assert sync(config, store, branch="main").sheets[0].commit is None  # stable round trip


def test_merge_conflict_names_table_and_key(csv_project: tuple[Config, Store, Path]) -> None:
    config, store, path = csv_project
    sync(config, store, branch="main")
    write_csv(path, [["acme", "Acme on the branch", "true"], *ROWS[1:]])
    sync(config, store)
    write_csv(path, [["acme", "Acme on main", "true"], *ROWS[1:]])
    main_head = sync(config, store, branch="main").sheets[0].commit
    with pytest.raises(MergeConflictError, match="customers: acme") as info:
        data.merge(config, store, "sheets/customers")
    assert info.value.conflicts == {"customers": ["acme"]}
    assert store.resolve("main") == main_head


# ---------------------------------------------------------------------------- Google Sheets


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[SheetsEmulator]:
    emu = SheetsEmulator()
    url = emu.start()
    monkeypatch.setenv("PLATFORM_KIT_GOOGLE_API_URL", url)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    yield emu
    emu.stop()


GOOGLE = """\
  - name: customers
    source: {spreadsheet: KEY1, worksheet: Customers}
    primary_key: [customer_id]
    columns: {customer_id: string, name: string, active: bool}
"""


def test_gspread_against_the_emulator(
    tmp_path: Path, services: Services, emulator: SheetsEmulator
) -> None:
    config, store = project(tmp_path, services, GOOGLE)
    emulator.put("KEY1", {"Customers": [HEADER, *ROWS, ["", "", ""]]})
    result = sync(config, store).sheets[0]
    assert result.added == 3 and result.source == "KEY1/Customers"
    assert result.revision.endswith("Z")
    assert "(source KEY1/Customers@" in store.log("sheets/customers", 1)[0].message
    assert any(r.startswith("/drive/v3/files/KEY1") for r in emulator.requests)

    emulator.fail(429, times=2)  # transient: retried with backoff, then it works
    assert sync(config, store).sheets[0].commit is None


@pytest.mark.parametrize(
    ("fault", "times", "expected"),
    [
        (500, 99, "kept answering HTTP 500"),
        (429, 99, "kept answering HTTP 429"),
        (401, 1, "refused the credentials"),
        (403, 1, "refused the credentials"),
        (404, 1, "spreadsheet 'KEY1' not found"),
    ],
)
def test_gspread_errors_leave_dolt_unchanged(
    tmp_path: Path,
    services: Services,
    emulator: SheetsEmulator,
    fault: int,
    times: int,
    expected: str,
) -> None:
    config, store = project(tmp_path, services, GOOGLE)
    emulator.put("KEY1", {"Customers": [HEADER, *ROWS]})
    before = heads(store)
    emulator.fail(fault, times)
    from platform_kit.sheets.google import GoogleSheetReader

    with pytest.raises(SourceError, match=expected):
        sync(config, store, reader=lambda s: GoogleSheetReader(attempts=3))
    assert heads(store) == before


def test_gspread_wrong_worksheet_and_missing_spreadsheet(
    tmp_path: Path, services: Services, emulator: SheetsEmulator
) -> None:
    config, store = project(tmp_path, services, GOOGLE)
    emulator.put("KEY1", {"Other": [HEADER, *ROWS]})
    with pytest.raises(SourceError, match="has no worksheet 'Customers'"):
        sync(config, store)
    config2, store2 = project(tmp_path / "b", services, GOOGLE.replace("KEY1", "MISSING"))
    with pytest.raises(SourceError, match="spreadsheet 'MISSING' not found"):
        sync(config2, store2)


def test_a_fresh_workspace_resync_skips_from_the_dolt_tag(
    tmp_path: Path, services: Services, emulator: SheetsEmulator
) -> None:
    """No local state (a fresh runner): Dolt's sync tag says the source is unchanged (issue 17)."""
    config, store = project(tmp_path / "a", services, CUSTOMERS)
    write_csv(tmp_path / "a" / "customers.csv", ROWS)
    first = sync(config, store).sheets[0]
    assert first.commit
    assert store.tag("sync/sheets/customers/customers") is not None
    fresh = tmp_path / "b"
    fresh.mkdir()
    (fresh / "platform.yaml").write_text((tmp_path / "a" / "platform.yaml").read_text())
    write_csv(fresh / "customers.csv", ROWS)
    before = heads(store)
    again = sync(load_config(fresh / "platform.yaml"), store).sheets[0]
    assert again.revision == "unchanged" and again.commit is None
    assert heads(store) == before and not (fresh / ".platform" / "sync-state.json").exists()

    # Google: one Drive metadata call decides, and no cell is read.
    gconfig, gstore = project(tmp_path / "g", services, GOOGLE)
    emulator.put("KEY1", {"Customers": [HEADER, *ROWS]})
    assert sync(gconfig, gstore).sheets[0].commit
    emulator.requests.clear()
    assert sync(gconfig, gstore).sheets[0].revision == "unchanged"
    assert [r.split("?")[0] for r in emulator.requests] == ["/drive/v3/files/KEY1"]
    emulator.put("KEY1", {"Customers": [HEADER, *ROWS, ["hooli", "Hooli", "no"]]})
    assert sync(gconfig, gstore).sheets[0].added == 1
