"""Promotion decisions and the durable alias history (pure parts)."""

from __future__ import annotations

import json

import pytest

from platform_kit.config import PromoteIf
from platform_kit.plan import ModelState, Reason, RecordedVersion, decide
from platform_kit.promotion import Promotion, decide_promotion
from platform_kit.retry import retry
from platform_kit.tracking.registry import (
    AliasAction,
    AliasMove,
    AliasState,
    VersionInfo,
    interrupted_promotion,
    parse_history,
    production_stack,
)
from platform_kit.tracking.tags import PROMOTION, PROMOTION_STATE, PromotionState


def moves(*steps: tuple[int, str]) -> list[AliasMove]:
    return [AliasMove(v, AliasAction(a), "2026-01-01T00:00:00+00:00") for v, a in steps]


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
    first = decide_promotion(PromoteIf("accuracy", min=0.9), {"accuracy": 0.1}, None)
    assert first.promote and "no production version" in first.reason


def test_promote_if_gates_later_versions() -> None:
    gate = PromoteIf("accuracy", min=0.6)
    passed = decide_promotion(gate, {"accuracy": 0.7}, 3)
    assert passed.promote and "meets min 0.6" in passed.reason
    assert passed.state is PromotionState.PROMOTED
    failed = decide_promotion(gate, {"accuracy": 0.5}, 3)
    assert not failed.promote and "0.5 fails min 0.6" in failed.reason and "v3" in failed.reason
    assert failed.state is PromotionState.NOT_PROMOTED
    missing = decide_promotion(gate, {"loss": 0.5}, 3)
    assert not missing.promote and "no metric 'accuracy'" in missing.reason


def test_no_gate_promotes() -> None:
    assert decide_promotion(None, {}, 2) == Promotion(True, "promoted: no promote_if")


def test_the_promotion_state_is_a_stable_tag_value() -> None:
    assert (PROMOTION_STATE, [s.value for s in PromotionState]) == (
        "promotion.state",
        ["promoted", "not_promoted"],
    )


def version(number: int, promotion: str, state: bool = True) -> VersionInfo:
    """A version as train tags it (``state``), or as versions from before promotion.state."""
    tags = {PROMOTION: promotion}
    if state:
        promoted = promotion.startswith("promoted")
        tags[PROMOTION_STATE] = (
            PromotionState.PROMOTED if promoted else PromotionState.NOT_PROMOTED
        ).value
    return VersionInfo("m", number, "run", "src", tags)


def test_a_registered_but_unaliased_promotion_is_found() -> None:
    promoted = [version(1, "promoted: no production version yet")]
    # A first version: its history rides on creating the model, the alias never came.
    assert interrupted_promotion(promoted, AliasState(moves((1, "promote")), None)) == 1
    # A later version registered, the run gone before the alias moved and history was written.
    later = [*promoted, version(2, "promoted: accuracy 0.9 meets min 0.8")]
    assert interrupted_promotion(later, AliasState(moves((1, "promote")), 1)) == 2


def test_finished_refused_and_rolled_back_promotions_are_left_alone() -> None:
    one = [version(1, "promoted: no production version yet")]
    assert interrupted_promotion(one, AliasState(moves((1, "promote")), 1)) is None
    refused = [*one, version(2, "not promoted: accuracy 0.5 fails min 0.8; production stays v1")]
    assert interrupted_promotion(refused, AliasState(moves((1, "promote")), 1)) is None
    rolled = [*one, version(2, "promoted: no promote_if")]
    history = moves((1, "promote"), (2, "promote"), (1, "rollback"))
    assert interrupted_promotion(rolled, AliasState(history, 1)) is None
    assert interrupted_promotion([], AliasState([], None)) is None


@pytest.mark.parametrize("state", [True, False], ids=["promotion.state", "sentence only"])
def test_an_interrupted_promotion_is_read_from_the_state_tag_or_else_the_sentence(
    state: bool,
) -> None:
    history = AliasState(moves((1, "promote")), 1)
    one = version(1, "promoted: no production version yet", state)
    promoted = [one, version(2, "promoted: no promote_if", state)]
    assert interrupted_promotion(promoted, history) == 2
    refused = [one, version(2, "not promoted: no metric 'accuracy'", state)]
    assert interrupted_promotion(refused, history) is None


def test_the_state_tag_wins_over_the_sentence() -> None:
    # The machine-readable tag decides; the sentence is for people and may be reworded.
    reworded = VersionInfo(
        "m",
        2,
        "run",
        "src",
        {PROMOTION: "promoted (reworded)", PROMOTION_STATE: PromotionState.NOT_PROMOTED.value},
    )
    assert interrupted_promotion([reworded], AliasState(moves((1, "promote")), 1)) is None
    unusual_sentence = VersionInfo(
        "m",
        2,
        "run",
        "src",
        {PROMOTION: "taken to production", PROMOTION_STATE: PromotionState.PROMOTED.value},
    )
    assert interrupted_promotion([unusual_sentence], AliasState(moves((1, "promote")), 1)) == 2


def test_retry_backs_off_then_reraises_and_keeps_messages_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError("x" * 300 + " Connection refused")

    try:
        retry(flaky, transient=lambda e: True, what="op", attempts=4, sleep=waits.append)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the last error must be re-raised")
    assert calls == 4 and waits == [0.2, 0.4, 0.8]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all(len(m) < 260 for m in messages)
    assert all("Connection refused" in m for m in messages)


def test_an_interrupted_promotion_is_planned_but_not_retrained() -> None:
    state = ModelState("m", "fp", "t", "c", "p")
    done = RecordedVersion("m", 1, "fp", "t", "c", "p")
    pending = RecordedVersion("m", 1, "fp", "t", "c", "p", promotion_pending=True)
    assert decide(state, [done]).reason is Reason.UNCHANGED
    planned = decide(state, [pending])
    assert planned.train and planned.reason is Reason.PROMOTION
    assert "not retrained" in planned.detail
