"""'run' merges a data branch the way 'data merge' does: the same call, the same Dolt commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from platform_kit import pipeline
from platform_kit.config import load_config
from platform_kit.store.base import MergeResult, RowChange, TableDiff


class RecordingStore:
    """Only what the merge stage calls; records the merges asked for."""

    def __init__(self) -> None:
        self.merges: list[tuple[str, str, str | None]] = []

    def branches(self) -> list[str]:
        return ["main", "sheets/customers"]

    def diff(self, a: str, b: str, tables: Any = None) -> list[TableDiff]:
        return [TableDiff("customers", added=[RowChange(("c1",), None, {"id": "c1"})])]

    def merge(self, branch: str, into: str, message: str | None = None) -> MergeResult:
        self.merges.append((branch, into, message))
        return MergeResult("f" * 32, fast_forward=False, changed=True)


def test_run_merges_with_the_message_of_data_merge(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text(
        "project: p\nsheets:\n  - name: customers\n    source: {file: c.csv}\n"
        "    primary_key: [id]\n    columns: {id: string}\n"
    )
    config = load_config(tmp_path / "platform.yaml")
    store = RecordingStore()
    stage = pipeline.SheetStage("customers", "sheets/customers", commit="a" * 32)
    lines: list[str] = []
    pipeline._merge(store, config, stage, lambda s, line: lines.append(line))  # type: ignore[arg-type]
    assert store.merges == [("sheets/customers", "main", "merge sheets/customers into main")]
    assert stage.merged == "f" * 32
