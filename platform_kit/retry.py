"""Retries with exponential backoff for transient server errors."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from platform_kit import env
from platform_kit.workflow_commands import annotation

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
            line = f"{what} failed ({reason}); retry {attempt}/{attempts - 1} in {delay:.1f}s"
            if env.in_github_actions():  # an annotation on the run's page, not only in the log
                sys.stderr.write(annotation("warning", env.redact(line), title="retry") + "\n")
                sys.stderr.flush()
            else:
                log.warning("%s", line)
            sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
