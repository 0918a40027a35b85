"""The training planner: which models need training, why, and how to split them into jobs.

Pure logic: it imports no backend. :mod:`platform_kit.plan_inputs` feeds it each model's current
state (fingerprint, trainer, params) and the versions the registry recorded; :func:`make_plan`
decides, and :func:`shard_plan` splits the models to train into balanced GitHub Actions matrix
jobs.

A model needs training when no recorded version has the same data fingerprint, trainer (id and
code hash) and params hash. The reason names what differs from its latest version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from platform_kit.errors import UsageError

MAX_MATRIX_JOBS = 256  # GitHub Actions' limit per workflow run


class Reason(StrEnum):
    NEW_MODEL = "new model"
    DATA_CHANGED = "data changed"
    PARAMS_CHANGED = "params changed"
    CODE_CHANGED = "code changed"
    FORCED = "forced"
    PROMOTION = "promotion interrupted"  # train finishes it without retraining
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ModelState:
    """What a model would train on now.

    ``fingerprint`` is None when it was not computed (a model with no recorded version needs no
    fingerprint to know it must train).
    """

    name: str
    fingerprint: str | None
    trainer: str  # the trainer's id: "package.module:function" or "command:<command>"
    code: str  # hash of the trainer's code
    params: str  # hash of the params
    rows: int | None = None  # training rows, when known: balances the shards


@dataclass(frozen=True)
class RecordedVersion:
    """A model version in the registry, reduced to what planning compares."""

    name: str
    version: int
    fingerprint: str
    trainer: str
    code: str
    params: str
    dolt_commit: str = ""
    query: str = ""  # hash of the query and its parameters (see catalog.Model.query_hash)
    rows: int | None = None
    # Registered as promoted, but the run stopped before it got the alias.
    promotion_pending: bool = False

    def same_inputs(self, state: ModelState) -> bool:
        return (
            self.fingerprint == state.fingerprint
            and self.trainer == state.trainer
            and self.code == state.code
            and self.params == state.params
        )


@dataclass(frozen=True)
class Decision:
    name: str
    train: bool
    reason: Reason
    detail: str = ""  # e.g. "fingerprint 1a2b3c -> 4d5e6f", "same as version 3"
    fingerprint: str | None = None
    rows: int | None = None
    latest_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "train": self.train,
            "reason": self.reason.value,
            "detail": self.detail,
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "latest_version": self.latest_version,
        }


@dataclass(frozen=True)
class Plan:
    to_commit: str  # the Dolt commit the models train on
    decisions: tuple[Decision, ...]
    from_commit: str | None = None  # the commit diffs were taken from (None: per model)
    refingerprinted: tuple[str, ...] = ()  # models whose rows were read to plan

    @property
    def to_train(self) -> list[Decision]:
        return [d for d in self.decisions if d.train]

    def to_json(self) -> dict[str, Any]:
        return {
            "to_commit": self.to_commit,
            "from_commit": self.from_commit,
            "train": [d.name for d in self.to_train],
            "models": [d.to_json() for d in self.decisions],
            "refingerprinted": list(self.refingerprinted),
        }


def decide(
    state: ModelState, versions: Sequence[RecordedVersion], *, force: bool = False
) -> Decision:
    """Whether one model trains, and why, given every version recorded for it."""
    latest = max(versions, key=lambda v: v.version) if versions else None

    def decision(train: bool, reason: Reason, detail: str) -> Decision:
        return Decision(
            name=state.name,
            train=train,
            reason=reason,
            detail=detail,
            fingerprint=state.fingerprint,
            rows=state.rows,
            latest_version=latest.version if latest else None,
        )

    if force:
        return decision(True, Reason.FORCED, "--force")
    if latest is None:
        return decision(True, Reason.NEW_MODEL, "no version yet")
    match = next((v for v in versions if v.same_inputs(state)), None)
    if match is not None and match.promotion_pending and match.version == latest.version:
        return decision(
            True, Reason.PROMOTION, f"version {match.version} never got the alias; not retrained"
        )
    if match is not None:
        return decision(
            False, Reason.UNCHANGED, f"same data, trainer and params as version {match.version}"
        )
    return decision(True, *_difference(latest, state))


def _difference(latest: RecordedVersion, state: ModelState) -> tuple[Reason, str]:
    """The main reason a model differs from its latest version; the detail lists every one."""
    found: list[tuple[Reason, str]] = []
    if latest.fingerprint != state.fingerprint:
        found.append(
            (
                Reason.DATA_CHANGED,
                f"fingerprint {short(latest.fingerprint)} -> {short(state.fingerprint)}",
            )
        )
    if latest.params != state.params:
        found.append(
            (Reason.PARAMS_CHANGED, f"params {short(latest.params)} -> {short(state.params)}")
        )
    if latest.trainer != state.trainer:
        found.append((Reason.CODE_CHANGED, f"trainer {latest.trainer} -> {state.trainer}"))
    elif latest.code != state.code:
        found.append((Reason.CODE_CHANGED, f"code {short(latest.code)} -> {short(state.code)}"))
    if not found:  # unreachable: decide() matched the latest version already
        return Reason.UNCHANGED, f"same as version {latest.version}"
    detail = "; ".join(d for _, d in found) + f" (since version {latest.version})"
    return found[0][0], detail


def make_plan(
    states: Iterable[ModelState],
    recorded: Mapping[str, Sequence[RecordedVersion]],
    *,
    to_commit: str,
    from_commit: str | None = None,
    force: bool = False,
    refingerprinted: Sequence[str] = (),
) -> Plan:
    """Decide every model, in name order.

    Args:
        states: each model's current inputs.
        recorded: model name -> its recorded versions (missing: none).
        force: train every model.
    """
    decisions = tuple(
        decide(s, recorded.get(s.name, ()), force=force)
        for s in sorted(states, key=lambda s: s.name)
    )
    return Plan(
        to_commit=to_commit,
        decisions=decisions,
        from_commit=from_commit,
        refingerprinted=tuple(refingerprinted),
    )


def short(value: str | None) -> str:
    return value[:12] if value else "none"


# ---------------------------------------------------------------------------- shards


@dataclass(frozen=True)
class Shard:
    """One matrix job: models to train at one exact Dolt commit."""

    ref: str
    models: tuple[str, ...]
    index: int = 0
    total: int = 1
    force: bool = False

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "ref": self.ref,
            "models": list(self.models),
            "index": self.index,
            "total": self.total,
        }
        if self.force:
            body["force"] = True
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Shard:
        """Parse a shard from 'plan --format github'.

        Raises:
            UsageError: the text is not a shard.
        """
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--shard is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise UsageError("--shard must be a JSON object from 'plan --format github'")
        ref, models = body.get("ref"), body.get("models")
        if not isinstance(ref, str) or not ref:
            raise UsageError("--shard has no 'ref' (the Dolt commit to train on)")
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise UsageError("--shard 'models' must be a list of model names")
        index, total = body.get("index", 0), body.get("total", 1)
        if not isinstance(index, int) or not isinstance(total, int) or not 0 <= index < total:
            raise UsageError("--shard 'index' and 'total' must be integers, 0 <= index < total")
        return cls(
            ref=ref, models=tuple(models), index=index, total=total, force=bool(body.get("force"))
        )


def shard_plan(plan: Plan, max_jobs: int = MAX_MATRIX_JOBS, *, force: bool = False) -> list[Shard]:
    """Split the models to train into at most ``max_jobs`` shards of balanced work.

    Work is a model's row count when known (else the mean of the known ones); the heaviest model
    goes to the lightest shard first (longest-processing-time scheduling). Deterministic.
    """
    if max_jobs < 1:
        raise UsageError(f"--max-jobs must be at least 1, got {max_jobs}")
    todo = plan.to_train
    if not todo:
        return []
    known = [d.rows for d in todo if d.rows is not None]
    default = (sum(known) / len(known)) if known else 1.0
    weights = {d.name: float(d.rows) if d.rows is not None else default for d in todo}
    count = min(max_jobs, len(todo))
    loads = [0.0] * count
    buckets: list[list[str]] = [[] for _ in range(count)]
    # Each model also has a fixed cost (reading rows, logging) that does not scale with rows.
    fixed = default / 4
    for name in sorted(weights, key=lambda n: (-weights[n], n)):
        lightest = min(range(count), key=lambda i: (loads[i], len(buckets[i]), i))
        buckets[lightest].append(name)
        loads[lightest] += weights[name] + fixed
    return [
        Shard(ref=plan.to_commit, models=tuple(sorted(b)), index=i, total=count, force=force)
        for i, b in enumerate(buckets)
    ]


def github_matrix(shards: Sequence[Shard]) -> dict[str, Any]:
    """The GitHub Actions matrix: ``{"include": [{"shard": <JSON>, "name": ...}]}``."""
    include = []
    for shard in shards:
        first = shard.models[0] if shard.models else ""
        more = f" +{len(shard.models) - 1}" if len(shard.models) > 1 else ""
        include.append(
            {"shard": shard.to_json(), "name": f"{shard.index + 1}/{shard.total} {first}{more}"}
        )
    return {"include": include}


def github_output(shards: Sequence[Shard]) -> str:
    """Lines for $GITHUB_OUTPUT: ``matrix=<json>`` and ``count=<jobs>``."""
    matrix = json.dumps(github_matrix(shards), separators=(",", ":"))
    return f"matrix={matrix}\ncount={len(shards)}\n"


@dataclass
class PlanSummary:
    """Counts per reason, for people."""

    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, plan: Plan) -> PlanSummary:
        counts: dict[str, int] = {}
        for d in plan.decisions:
            counts[d.reason.value] = counts.get(d.reason.value, 0) + 1
        return cls(counts)

    def line(self) -> str:
        return ", ".join(f"{n} {r}" for r, n in sorted(self.counts.items())) or "no models"
