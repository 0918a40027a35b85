"""`init_project`: a commented, valid sample project that never clobbers files by accident."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from platform_kit.config import FileSource, load_config
from platform_kit.errors import UsageError
from platform_kit.init import TEMPLATE_FILES, init_project, project_name


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_writes_a_valid_project(tmp_path: Path) -> None:
    root = tmp_path / "Support Bots"
    written = init_project(root)
    assert written == [root / f for f in TEMPLATE_FILES]
    config = load_config(root / "platform.yaml")
    assert config.project == "support-bots"
    assert config.mlflow.experiment == "support-bots"
    assert config.release is not None and config.release.image == "127.0.0.1:5000/support-bots"
    assert config.dolt.server is None and config.mlflow.tracking_uri is None
    for sheet in config.sheets:
        assert isinstance(sheet.source, FileSource) and sheet.source.file.suffix == ".csv"
        rows = read_csv(sheet.source.file)
        assert rows and list(rows[0]) == list(sheet.columns)
        keys = [tuple(r[k] for k in sheet.primary_key) for r in rows]
        assert len(set(keys)) == len(keys) and all(all(k) for k in keys)


def test_sample_sheets_fit_the_model_family(tmp_path: Path) -> None:
    init_project(tmp_path)
    customers = read_csv(tmp_path / "sheets" / "customers.csv")
    examples = read_csv(tmp_path / "sheets" / "examples.csv")
    active = {c["customer_id"] for c in customers if c["active"] == "TRUE"}
    assert len(customers) >= 3 and 2 <= len(active) < len(customers)
    assert 24 <= len(examples) < 100  # a few dozen rows
    per_customer = Counter(e["customer_id"] for e in examples)
    assert set(per_customer) == {c["customer_id"] for c in customers}
    assert all(per_customer[c] >= 20 for c in active)
    assert all(len({e["label"] for e in examples if e["customer_id"] == c}) >= 2 for c in active)


def test_every_key_is_explained(tmp_path: Path) -> None:
    init_project(tmp_path)
    lines = (tmp_path / "platform.yaml").read_text().splitlines()
    comments = " ".join(line.split("#", 1)[1] for line in lines if "#" in line)
    data = yaml.safe_load("\n".join(lines))

    def keys(node: object, skip: bool = False) -> set[str]:
        if isinstance(node, list):
            return set().union(*(keys(n) for n in node))
        if not isinstance(node, dict):
            return set()
        found = set() if skip else set(node)
        for key, value in node.items():
            # column names and trainer params are the user's own, not platform.yaml's keys
            found |= keys(value, skip=key in ("columns", "params"))
        return found

    explained = set()
    for key in keys(data):
        first = next(
            i
            for i, line in enumerate(lines)
            if re.search(rf"(^|[\s{{,-]){key}:", line.split("#", 1)[0])
        )
        before = lines[first - 1].strip()
        if before.startswith(("#", "- #")) or "#" in lines[first] or key in comments:
            explained.add(key)
    assert keys(data) - explained == set()
    assert "github" in comments and "GOOGLE_APPLICATION_CREDENTIALS" in comments


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text("project: mine\n")
    with pytest.raises(UsageError, match=r"platform\.yaml: already exists.*--force"):
        init_project(tmp_path)
    # nothing was written: not even the files that did not exist
    assert (tmp_path / "platform.yaml").read_text() == "project: mine\n"
    assert not (tmp_path / "sheets").exists()


def test_force_overwrites(tmp_path: Path) -> None:
    init_project(tmp_path)
    (tmp_path / "sheets" / "examples.csv").write_text("broken")
    (tmp_path / "notes.txt").write_text("mine")
    init_project(tmp_path, force=True)
    assert (tmp_path / "sheets" / "examples.csv").read_text().startswith("example_id,")
    assert (tmp_path / "notes.txt").read_text() == "mine"  # other files are left alone


def test_a_file_in_the_way_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        init_project(tmp_path / "taken")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Support Bots", "support-bots"), ("acme_2024", "acme-2024"), ("---", "my-project")],
)
def test_project_name(tmp_path: Path, name: str, expected: str) -> None:
    assert project_name(tmp_path / name) == expected


@pytest.mark.slow
def test_sample_models_pass_their_promotion_threshold(tmp_path: Path) -> None:
    from training.intent import train

    init_project(tmp_path / "p")
    config = load_config(tmp_path / "p" / "platform.yaml")
    (model,) = config.models
    assert model.promote_if is not None
    customers = read_csv(tmp_path / "p" / "sheets" / "customers.csv")
    examples = read_csv(tmp_path / "p" / "sheets" / "examples.csv")
    for customer in (c["customer_id"] for c in customers if c["active"] == "TRUE"):
        rows = [
            {"text": e["text"], "label": e["label"]}
            for e in sorted(examples, key=lambda e: e["example_id"])
            if e["customer_id"] == customer
        ]
        metrics = train(rows, dict(model.params), tmp_path / customer)
        assert model.promote_if.passes(metrics), (customer, metrics)
