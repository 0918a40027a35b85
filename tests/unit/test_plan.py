"""The pure planner: decisions and reasons, balanced shards, shard JSON, the GitHub matrix."""

from __future__ import annotations

import json

import pytest

from platform_kit.errors import UsageError
from platform_kit.fingerprints import params_hash
from platform_kit.plan import (
    Decision,
    ModelState,
    Plan,
    Reason,
    RecordedVersion,
    Shard,
    decide,
    github_matrix,
    github_output,
    make_plan,
    shard_plan,
)


def state(
    name: str = "m", fp: str = "f1", trainer: str = "t:x", code: str = "c1", params: str = "p1"
) -> ModelState:
    return ModelState(name, fp, trainer, code, params, rows=100)


def version(
    n: int, fp: str = "f1", trainer: str = "t:x", code: str = "c1", params: str = "p1"
) -> RecordedVersion:
    return RecordedVersion("m", n, fp, trainer, code, params)


def test_new_model_trains() -> None:
    d = decide(state(), [])
    assert d.train and d.reason is Reason.NEW_MODEL


def test_unchanged_is_skipped_naming_the_version() -> None:
    d = decide(state(), [version(1), version(2, fp="f0")])
    assert not d.train and d.reason is Reason.UNCHANGED
    assert "version 1" in d.detail and d.latest_version == 2


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"fp": "f2"}, Reason.DATA_CHANGED),
        ({"params": "p2"}, Reason.PARAMS_CHANGED),
        ({"code": "c2"}, Reason.CODE_CHANGED),
        ({"trainer": "t:y"}, Reason.CODE_CHANGED),
    ],
)
def test_each_difference_has_its_reason(changed: dict[str, str], reason: Reason) -> None:
    d = decide(state(**changed), [version(1)])
    assert d.train and d.reason is reason


def test_data_change_is_the_main_reason_and_detail_lists_all() -> None:
    d = decide(state(fp="f2", params="p2"), [version(1)])
    assert d.reason is Reason.DATA_CHANGED
    assert "fingerprint" in d.detail and "params" in d.detail


def test_going_back_to_old_inputs_reuses_the_old_version() -> None:
    # Data went f1 -> f2 -> f1: version 1 already has exactly these inputs.
    d = decide(state(fp="f1"), [version(1, fp="f1"), version(2, fp="f2")])
    assert not d.train


def test_force_trains_everything() -> None:
    d = decide(state(), [version(1)], force=True)
    assert d.train and d.reason is Reason.FORCED


def test_make_plan_orders_by_name() -> None:
    plan = make_plan([state("b"), state("a")], {"a": [version(1)]}, to_commit="c" * 32)
    assert [d.name for d in plan.decisions] == ["a", "b"]
    assert [d.name for d in plan.to_train] == ["b"]
    body = plan.to_json()
    assert body["train"] == ["b"] and body["to_commit"] == "c" * 32


def test_params_hash_ignores_key_order() -> None:
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": 2})


def plan_of(n: int, rows: int | None = 100) -> Plan:
    decisions = tuple(Decision(f"m{i:04d}", True, Reason.NEW_MODEL, rows=rows) for i in range(n))
    return Plan(to_commit="a" * 32, decisions=decisions)


def test_github_format_holds_at_most_max_jobs_at_1000_models() -> None:
    plan = plan_of(1000)
    shards = shard_plan(plan, 256)
    assert len(shards) == 256
    names = [m for s in shards for m in s.models]
    assert sorted(names) == sorted(d.name for d in plan.decisions)
    sizes = {len(s.models) for s in shards}
    assert sizes <= {3, 4}  # balanced
    matrix = github_matrix(shards)
    assert len(matrix["include"]) == 256
    assert len(json.dumps(matrix)) < 1_000_000  # a job output is at most 1 MB
    out = github_output(shards)
    assert out.startswith("matrix=") and "\ncount=256\n" in out
    assert json.loads(out.splitlines()[0].removeprefix("matrix=")) == matrix


def test_fewer_models_than_jobs_gives_one_job_each() -> None:
    assert [len(s.models) for s in shard_plan(plan_of(3), 256)] == [1, 1, 1]
    assert shard_plan(plan_of(0), 256) == []


def test_shards_balance_rows() -> None:
    decisions = [Decision("big", True, Reason.NEW_MODEL, rows=10_000)] + [
        Decision(f"s{i}", True, Reason.NEW_MODEL, rows=1000) for i in range(10)
    ]
    shards = shard_plan(Plan("c" * 32, tuple(decisions)), 2)
    by_model = {m: s.index for s in shards for m in s.models}
    # The big model is alone (or nearly so); the small ones fill the other job.
    assert sum(1 for m, i in by_model.items() if i == by_model["big"]) <= 2


def test_only_models_to_train_are_sharded() -> None:
    decisions = (
        Decision("a", True, Reason.DATA_CHANGED),
        Decision("b", False, Reason.UNCHANGED),
    )
    shards = shard_plan(Plan("c" * 32, decisions), 256)
    assert [s.models for s in shards] == [("a",)]


def test_shard_json_round_trips() -> None:
    for shard in shard_plan(plan_of(10), 4, force=True):
        again = Shard.from_json(shard.to_json())
        assert again == shard
        assert again.force


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"models": []}',
        '{"ref": "x", "models": "a"}',
        '{"ref": "x", "models": [], "index": 3, "total": 2}',
    ],
)
def test_bad_shard_json_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        Shard.from_json(text)


def test_max_jobs_must_be_positive() -> None:
    with pytest.raises(UsageError):
        shard_plan(plan_of(2), 0)
