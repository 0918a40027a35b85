"""The bundled example: generated deterministically, varied, and v2 is exactly one analyst edit."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType

import pytest

from platform_kit.config import FileSource, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_generate", EXAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exports(gen: ModuleType) -> tuple[object, object]:
    return gen.build()  # type: ignore[no-any-return]


def by_customer(rows: list[object]) -> dict[str, dict[str, tuple[str, str]]]:
    out: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for row in rows:
        out[row.customer_id][row.example_id] = (row.text, row.label)  # type: ignore[attr-defined]
    return out


@pytest.mark.slow
def test_committed_files_match_the_generator(
    gen: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen.main(["--check"]) == 0, capsys.readouterr().err


def test_check_reports_a_stale_file(gen: ModuleType) -> None:
    path = EXAMPLES / "sheets" / "customers.csv"
    stale = {path: path.read_bytes() + b"extra-customer,Extra,bank,us-east,TRUE,2024-01-01\n"}
    assert gen.check(stale) == [
        "examples/sheets/customers.csv: differs from what generate.py writes"
    ]
    assert gen.check({EXAMPLES / "sheets" / "nope.csv": b""}) == [
        "examples/sheets/nope.csv: missing"
    ]


def test_generation_is_deterministic(gen: ModuleType, exports: tuple[object, object]) -> None:
    assert gen.build() == exports
    rows = [["e1", "c1", "hello there", "greet"], ["e2", "c1", "bye", "leave"]]
    assert gen.xlsx_bytes(gen.EXAMPLE_COLUMNS, rows) == gen.xlsx_bytes(gen.EXAMPLE_COLUMNS, rows)
    assert gen.xlsx_rows(gen.xlsx_bytes(gen.EXAMPLE_COLUMNS, rows)) == [
        tuple(gen.EXAMPLE_COLUMNS),
        *map(tuple, rows),
    ]


def test_the_data_set_is_realistic(gen: ModuleType, exports: tuple[object, object]) -> None:
    v1 = exports[0]
    customers = v1.customers  # type: ignore[attr-defined]
    rows = by_customer(v1.examples)  # type: ignore[attr-defined]
    assert len(customers) >= 20
    assert len({c.industry for c in customers}) >= 7
    assert sum(c.active for c in customers) >= 20
    assert 10_000 < len(v1.examples) < 25_000  # type: ignore[attr-defined]
    sizes = [len(rows[c.customer_id]) for c in customers]
    assert min(sizes) >= 300 and max(sizes) <= 1500 and max(sizes) - min(sizes) > 500
    for customer in customers:
        labels = Counter(label for _, label in rows[customer.customer_id].values())
        assert 5 <= len(labels) <= 10, customer.customer_id
        assert set(labels) <= set(gen.intents_of(customer.industry))
        # imbalanced, as real traffic is
        assert max(labels.values()) > 1.5 * min(labels.values()), customer.customer_id


def test_the_text_is_varied(exports: tuple[object, object]) -> None:
    texts = [e.text for e in exports[0].examples]  # type: ignore[attr-defined]
    assert len(set(texts)) / len(texts) > 0.93
    words = Counter(w for t in texts for w in t.lower().split())
    assert len(words) > 3000
    # Greetings, typos and casing vary: no single phrasing dominates a label.
    openings = Counter(" ".join(t.lower().split()[:2]) for t in texts)
    assert openings.most_common(1)[0][1] / len(texts) < 0.05
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) <= 4 and max(lengths) >= 20


def test_v2_is_one_edited_and_one_added_customer(
    gen: ModuleType, exports: tuple[object, object]
) -> None:
    v1, v2 = exports
    old, new = by_customer(v1.examples), by_customer(v2.examples)  # type: ignore[attr-defined]
    changed = {c for c in old.keys() | new.keys() if old.get(c) != new.get(c)}
    assert changed == {gen.EDITED_CUSTOMER, gen.NEW_CUSTOMER[0]}

    edited_old, edited_new = old[gen.EDITED_CUSTOMER], new[gen.EDITED_CUSTOMER]
    removed = edited_old.keys() - edited_new.keys()
    added = edited_new.keys() - edited_old.keys()
    relabelled = [
        k for k in edited_old.keys() & edited_new.keys() if edited_old[k] != edited_new[k]
    ]
    assert removed and added and relabelled
    assert all(edited_old[k][0] == edited_new[k][0] for k in relabelled)  # only labels fixed
    assert gen.NEW_CUSTOMER[0] not in old and len(new[gen.NEW_CUSTOMER[0]]) >= 300

    assert v2.customers == [*v1.customers, gen.make_customer(gen.NEW_CUSTOMER)]  # type: ignore[attr-defined]
    # Rows of untouched customers keep their order too: a sheet edit does not reshuffle them.
    untouched = [e for e in v2.examples if e.customer_id not in changed]  # type: ignore[attr-defined]
    assert untouched == [e for e in v1.examples if e.customer_id not in changed]  # type: ignore[attr-defined]


def test_committed_sheets_are_small_and_shaped_as_configured() -> None:
    config = load_config(EXAMPLES / "platform.yaml")
    assert [s.name for s in config.sheets] == ["customers", "examples"]
    for version in ("sheets", "sheets-v2"):
        xlsx = EXAMPLES / version / "examples.xlsx"
        assert xlsx.stat().st_size < 2_000_000
        with (EXAMPLES / version / "customers.csv").open(newline="") as handle:
            header = next(csv.reader(handle))
        assert header == list(config.sheet("customers").columns)
    for sheet in config.sheets:
        assert isinstance(sheet.source, FileSource) and sheet.source.file.exists()
    assert config.sheet("examples").source.worksheet == "Sheet1"  # type: ignore[union-attr]


def test_platform_yaml_follows_the_architecture() -> None:
    config = load_config(EXAMPLES / "platform.yaml")
    (model,) = config.models
    assert model.family == "intent" and model.name == "intent-{customer_id}"
    assert "customers" in (model.for_each or "") and "active" in (model.for_each or "")
    assert model.trainer == "training.intent:train"
    assert model.promote_if is not None and model.promote_if.min == 0.6
    assert model.params["epochs"] == 5 and "seed" in model.params
    assert config.release is not None
    assert config.release.image == "127.0.0.1:5000/intent-adapters"
    assert (config.release.base_image, config.release.alias) == ("python:3.11-slim", "production")
    assert config.dolt.server is None and config.mlflow.tracking_uri is None


@pytest.mark.slow
def test_the_shipped_trainer_is_good_but_not_perfect(
    exports: tuple[object, object], tmp_path: Path
) -> None:
    from training.intent import train

    config = load_config(EXAMPLES / "platform.yaml")
    params = dict(config.models[0].params)
    rows = by_customer(exports[0].examples)  # type: ignore[attr-defined]
    for customer in ("ledgerly", "wellspring-clinics"):
        data = [{"text": t, "label": label} for t, label in rows[customer].values()]
        metrics = train(data, params, tmp_path / customer)
        assert 0.7 < metrics["accuracy"] < 0.99, (customer, metrics)


def test_init_sample_is_generated_too(gen: ModuleType) -> None:
    sample = gen.init_sample()
    text = io.StringIO((gen.INIT_DIR / "examples.csv").read_text(encoding="utf-8"), newline="")
    assert len(list(csv.DictReader(text))) == len(sample.examples) < 100
