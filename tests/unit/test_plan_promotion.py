"""Promotion decisions and the durable alias history (pure parts)."""

from __future__ import annotations

import json

from platform_kit.config import PromoteIf
from platform_kit.tracking.models import AliasMove, parse_history, production_stack
from platform_kit.train import promotion_decision


def moves(*steps: tuple[int, str]) -> list[AliasMove]:
    return [AliasMove(v, a, "2026-01-01T00:00:00+00:00") for v, a in steps]


def test_promotions_stack_up() -> None:
    assert production_stack(moves((1, "promote"), (2, "promote"), (3, "promote"))) == [1, 2, 3]


def test_rollback_pops_to_its_target_and_then_further() -> None:
    history = moves((1, "promote"), (2, "promote"), (3, "promote"), (2, "rollback"))
    assert production_stack(history) == [1, 2]
    history += moves((1, "rollback"))
    assert production_stack(history) == [1]


def test_rollback_to_a_version_never_in_production_pushes_it() -> None:
    assert production_stack(moves((2, "promote"), (1, "rollback"))) == [2, 1]


def test_repeated_promotion_of_the_same_version_is_one_entry() -> None:
    assert production_stack(moves((1, "promote"), (1, "promote"))) == [1]


def test_history_round_trips_and_damage_restarts_it() -> None:
    history = moves((1, "promote"), (2, "rollback"))
    text = json.dumps([m.to_json() for m in history])
    assert parse_history(text) == history
    assert parse_history("{not json") == []
    assert parse_history(None) == []


def test_first_version_is_always_promoted() -> None:
    ok, why = promotion_decision(PromoteIf("accuracy", min=0.9), {"accuracy": 0.1}, None)
    assert ok and "no production version" in why


def test_promote_if_gates_later_versions() -> None:
    gate = PromoteIf("accuracy", min=0.6)
    ok, why = promotion_decision(gate, {"accuracy": 0.7}, 3)
    assert ok and "meets min 0.6" in why
    ok, why = promotion_decision(gate, {"accuracy": 0.5}, 3)
    assert not ok and "0.5 fails min 0.6" in why and "v3" in why
    ok, why = promotion_decision(gate, {"loss": 0.5}, 3)
    assert not ok and "no metric 'accuracy'" in why


def test_no_gate_promotes() -> None:
    assert promotion_decision(None, {}, 2)[0]
