"""The intent trainer: deterministic, evaluated on a held-out split, exports a servable model."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from training.bow import BowModel
from training.intent import split, train

WORDS = {
    "billing": ["invoice", "charge", "refund", "payment", "card", "bill"],
    "shipping": ["package", "deliver", "track", "late", "arrive", "parcel"],
    "account": ["password", "login", "reset", "email", "username", "profile"],
}
FILLER = ["please", "help", "me", "with", "my", "the", "a", "i", "need", "to", "can", "you"]


def make_rows(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(sorted(WORDS))
        words = [rng.choice(WORDS[label] if rng.random() < 0.5 else FILLER) for _ in range(6)]
        rows.append({"text": " ".join(words), "label": label})
    return rows


PARAMS = {"epochs": 10, "lr": 0.05, "buckets": 512, "dim": 8}


def test_trains_evaluates_and_exports(tmp_path: Path) -> None:
    rows = make_rows(300)
    metrics = train(rows, PARAMS, tmp_path)
    assert set(metrics) >= {"accuracy", "loss", "n_train", "n_eval"}
    assert metrics["n_train"] + metrics["n_eval"] == 300
    assert metrics["n_eval"] == 60
    assert metrics["accuracy"] > 0.8
    model = BowModel.load(tmp_path / "model")
    assert model.labels == sorted(WORDS)
    assert model.predict(["refund my invoice please"])[0]["label"] == "billing"


def test_deterministic_under_a_seed(tmp_path: Path) -> None:
    rows = make_rows(200)
    a = train(rows, {**PARAMS, "seed": 7}, tmp_path / "a")
    b = train(rows, {**PARAMS, "seed": 7}, tmp_path / "b")
    assert a == b
    wa = BowModel.load(tmp_path / "a" / "model")
    wb = BowModel.load(tmp_path / "b" / "model")
    assert (wa.embedding == wb.embedding).all() and (wa.weight == wb.weight).all()
    c = train(rows, {**PARAMS, "seed": 8}, tmp_path / "c")
    assert c != a


def test_row_order_does_not_matter_to_the_split_sizes(tmp_path: Path) -> None:
    assert split(10, 0.2, 0) == split(10, 0.2, 0)
    train_idx, eval_idx = split(10, 0.2, 0)
    assert len(eval_idx) == 2 and not set(train_idx) & set(eval_idx)
    assert split(2, 0.2, 0)[1] and split(2, 0.2, 0)[0]  # one row each side at least


def test_custom_columns(tmp_path: Path) -> None:
    rows = [{"utterance": r["text"], "intent": r["label"]} for r in make_rows(50)]
    params = {**PARAMS, "text_column": "utterance", "label_column": "intent"}
    assert train(rows, params, tmp_path)["n_eval"] == 10


def test_bad_rows_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        train(make_rows(1), PARAMS, tmp_path)
    with pytest.raises(ValueError, match="no column label"):
        train([{"text": "a"}, {"text": "b"}], PARAMS, tmp_path)
