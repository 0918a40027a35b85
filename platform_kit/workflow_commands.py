"""GitHub Actions workflow commands (``::error::``, ``::warning::``, ``::group::``) as text.

The runner reads them from a step's output and turns them into annotations and foldable log
groups; act reads them too. Values are escaped as the runner expects, so a message with a
newline or a property with a comma stays one command.
"""

from __future__ import annotations

from platform_kit import env


def in_ci() -> bool:
    """True in GitHub Actions, under act, or any CI that sets ``CI``: no live redraws there."""
    return env.in_github_actions() or (env.get(env.CI) or "").lower() not in ("", "0", "false")


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, **properties: str) -> str:
    """``::error file=F,line=N,title=T::message`` (level: error, warning or notice)."""
    props = ",".join(f"{k}={_property(v)}" for k, v in properties.items() if v)
    return f"::{level}{' ' + props if props else ''}::{_data(message)}"
