"""Plan and train logic on the two fakes: the in-memory store and the in-memory model registry.

The same flows tests/integration/test_train*.py check on Dolt and MLflow, in seconds. The fakes
are held to the real backends' behaviour by the contract suites
(tests/integration/test_store_contract.py, tests/integration/test_models_registry.py).
The trainer is a command (a few lines of shell): its workers start without torch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_kit.config import Config, load_config
from platform_kit.errors import ServiceError
from platform_kit.plan import Reason
from platform_kit.plan_inputs import plan_training
from platform_kit.store.base import ChangeSet, TableSchema
from platform_kit.store.memory import MemoryStore
from platform_kit.tracking.memory_registry import MemoryModelRegistry
from platform_kit.train import ModelStatus, train

CONFIG = """\
project: t
dolt: {database: training}
models:
  - family: intent
    for_each: "SELECT customer_id FROM customers"
    name: "intent-{customer_id}"
    query: "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s"
    trainer: {command: "sh train.sh {data} {out}"}
    promote_if: {metric: accuracy, min: 0.5}
"""
# Counts the rows (the CSV's lines less the header) into a metric; writes a model directory.
TRAINER = """\
set -e
if grep -q boom "$1"; then echo "bad rows" >&2; exit 3; fi
mkdir -p "$2/model"
n=$(($(wc -l < "$1") - 1))
cp "$1" "$2/model/rows.csv"
printf '{"accuracy": 0.9, "rows": %s}' "$n" > "$2/metrics.json"
"""
CUSTOMERS = TableSchema(columns={"customer_id": "string"}, primary_key=("customer_id",))
EXAMPLES = TableSchema(
    columns={"id": "string", "customer_id": "string", "text": "string", "label": "string"},
    primary_key=("id",),
)
NAMES = ["intent-acme", "intent-globex"]


def example(i: int, customer: str, text: str = "") -> dict[str, object]:
    return {
        "id": f"{customer}-{i}",
        "customer_id": customer,
        "text": text or f"text {i}",
        "label": "a" if i % 2 else "b",
    }


def seeded_store() -> MemoryStore:
    store = MemoryStore("training")
    store.create_database()
    store.commit_changes(
        "main",
        [
            ChangeSet(
                "customers",
                CUSTOMERS,
                inserts=[{"customer_id": "acme"}, {"customer_id": "globex"}],
            ),
            ChangeSet(
                "examples",
                EXAMPLES,
                inserts=[example(i, c) for c in ("acme", "globex") for i in range(4)],
            ),
        ],
        "seed",
    )
    return store


@pytest.fixture
def project(tmp_path: Path) -> tuple[Config, MemoryStore, MemoryModelRegistry]:
    (tmp_path / "platform.yaml").write_text(CONFIG)
    (tmp_path / "train.sh").write_text(TRAINER)
    store = seeded_store()
    registry = MemoryModelRegistry(project="t", root=tmp_path / "registry")
    return load_config(tmp_path / "platform.yaml"), store, registry


def reasons(config: Config, store: MemoryStore, registry: MemoryModelRegistry) -> dict[str, Reason]:
    plan = plan_training(config, store, registry)
    return {d.name: d.reason for d in plan.decisions}


def test_train_once_then_only_the_model_whose_rows_changed(
    project: tuple[Config, MemoryStore, MemoryModelRegistry],
) -> None:
    config, store, registry = project
    assert reasons(config, store, registry) == dict.fromkeys(NAMES, Reason.NEW_MODEL)

    report = train(config, store, registry, workers=1)
    assert [(r.name, r.status, r.version, r.promoted) for r in report.results] == [
        (name, ModelStatus.TRAINED, 1, True) for name in NAMES
    ], [r.reason for r in report.results]
    assert report.results[0].metrics == {"accuracy": 0.9, "rows": 4.0}
    for name in NAMES:
        production = registry.production(name)
        assert production is not None and production.version == 1
        assert (Path(production.source) / "rows.csv").is_file()  # the artifacts were kept
        assert [m.version for m in registry.alias_state(name).history] == [1]
    assert reasons(config, store, registry) == dict.fromkeys(NAMES, Reason.UNCHANGED)

    store.commit_changes(
        "main",
        [ChangeSet("examples", EXAMPLES, updates=[example(0, "globex", "edited")])],
        "edit one of globex's rows",
    )
    assert reasons(config, store, registry) == {
        "intent-acme": Reason.UNCHANGED,
        "intent-globex": Reason.DATA_CHANGED,
    }
    again = train(config, store, registry, workers=1)
    assert {r.name: (r.status, r.version) for r in again.results} == {
        "intent-acme": (ModelStatus.SKIPPED, None),
        "intent-globex": (ModelStatus.TRAINED, 2),
    }
    assert registry.production("intent-globex").version == 2  # type: ignore[union-attr]
    assert registry.rollback("intent-globex") == (2, 1)
    assert reasons(config, store, registry) == dict.fromkeys(NAMES, Reason.UNCHANGED)


def test_a_failing_trainer_records_a_failed_run_and_no_version(
    project: tuple[Config, MemoryStore, MemoryModelRegistry],
) -> None:
    config, store, registry = project
    store.commit_changes(
        "main",
        [ChangeSet("examples", EXAMPLES, updates=[example(1, "globex", "boom")])],
        "break globex",
    )
    report = train(config, store, registry, workers=2)
    status = {r.name: r.status for r in report.results}
    assert status == {"intent-acme": ModelStatus.TRAINED, "intent-globex": ModelStatus.FAILED}
    [failed] = report.failed
    assert "exited with 3" in failed.reason and "bad rows" in failed.reason
    [run] = registry.runs({"model.name": "intent-globex"})
    assert run.failed and run.run_id == failed.run_id and "bad rows" in run.tags["error"]
    assert "intent-globex" not in registry.versions()
    assert reasons(config, store, registry) == {
        "intent-acme": Reason.UNCHANGED,
        "intent-globex": Reason.NEW_MODEL,
    }


class AliasFailsOnce(MemoryModelRegistry):
    """Stops once where a run can be cut off: after registering a version, before its alias."""

    broken = False

    def _set_alias(self, name: str, alias: str, version: int) -> None:
        if self.broken:
            self.broken = False
            raise ServiceError("MLflow went away")
        super()._set_alias(name, alias, version)


def test_a_promotion_an_interrupted_run_left_is_finished_without_retraining(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text(CONFIG)
    (tmp_path / "train.sh").write_text(TRAINER)
    config = load_config(tmp_path / "platform.yaml")
    store = seeded_store()
    registry = AliasFailsOnce(project="t", root=tmp_path / "registry")
    train(config, store, registry, workers=1)
    edit = [ChangeSet("examples", EXAMPLES, updates=[example(0, "acme", "edited")])]
    store.commit_changes("main", edit, "edit one of acme's rows")
    registry.broken = True
    with pytest.raises(ServiceError, match="MLflow went away"):
        train(config, store, registry, workers=1)
    assert registry.production("intent-acme").version == 1  # type: ignore[union-attr]
    assert len(registry.versions()["intent-acme"]) == 2  # registered, alias never moved
    assert reasons(config, store, registry)["intent-acme"] is Reason.PROMOTION

    report = train(config, store, registry, workers=1)
    acme = report.results[0]
    assert (acme.name, acme.version, acme.promoted) == ("intent-acme", 2, True)
    assert registry.production("intent-acme").version == 2  # type: ignore[union-attr]
    assert [m.version for m in registry.alias_state("intent-acme").history] == [1, 2]
    assert len(registry.versions()["intent-acme"]) == 2  # nothing retrained
    assert reasons(config, store, registry) == dict.fromkeys(NAMES, Reason.UNCHANGED)
