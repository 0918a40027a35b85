"""Whether a newly trained version takes the production alias: the ``promote_if`` gate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from platform_kit.config import PromoteIf
from platform_kit.tracking.tags import PromotionState


@dataclass(frozen=True)
class Promotion:
    """The decision for one new version, and the sentence that explains it to people."""

    promote: bool
    reason: str  # "promoted: ..." or "not promoted: ..." (the version's ``promotion`` tag)

    @property
    def state(self) -> PromotionState:
        """The decision for machines (the version's ``promotion.state`` tag)."""
        return PromotionState.PROMOTED if self.promote else PromotionState.NOT_PROMOTED


def decide_promotion(
    promote_if: PromoteIf | None,
    metrics: Mapping[str, float],
    current: int | None,
    alias: str = "production",
) -> Promotion:
    """Whether a new version takes the alias, and why (or why not).

    Args:
        current: the version holding the alias now; None: none does, so the new one takes it.
    """
    if current is None:
        return Promotion(True, f"promoted: no {alias} version yet")
    if promote_if is None:
        return Promotion(True, "promoted: no promote_if")
    value = metrics.get(promote_if.metric)
    bounds = " and ".join(
        f"{word} {limit:g}"
        for word, limit in (("min", promote_if.min), ("max", promote_if.max))
        if limit is not None
    )
    if value is None:
        return Promotion(
            False, f"not promoted: no metric {promote_if.metric!r} (promote_if needs it)"
        )
    if promote_if.passes(metrics):
        return Promotion(True, f"promoted: {promote_if.metric} {value:.4g} meets {bounds}")
    return Promotion(
        False,
        f"not promoted: {promote_if.metric} {value:.4g} fails {bounds}; {alias} stays v{current}",
    )
