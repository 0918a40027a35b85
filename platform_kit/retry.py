"""Retries with exponential backoff for transient server errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def retry(
    call: Callable[[], T],
    *,
    transient: Callable[[BaseException], bool],
    what: str,
    attempts: int = 5,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; when it raises an error ``transient`` accepts, wait and try again.

    The last error is re-raised unchanged so the caller can translate it into a domain error.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not transient(exc):
                raise
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if len(reason) > 160:  # urllib3's run to 400 characters; the cause comes last
                reason = f"{reason[:100]} ... {reason[-50:]}"
            log.warning(
                "%s failed (%s); retry %d/%d in %.1fs", what, reason, attempt, attempts - 1, delay
            )
            sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
