"""Which DoltHub hook deliveries wake the watcher, and what the receiver answers."""

from __future__ import annotations

import pytest

from platform_kit.dolthub_webhook import DoltHubReceiver, relevant
from platform_kit.errors import GitHubError
from platform_kit.github import WatchEvent


@pytest.mark.parametrize(
    ("payload", "wanted"),
    [
        ({"event_name": "push", "ref": "main", "head": "h", "prev": "p"}, True),
        ({"event_name": "push", "ref": "refs/heads/main"}, True),
        ({"event_name": "push", "ref": "sheets/customers"}, False),
        ({"event_name": "pull_request", "state": "merged"}, True),
        ({"event_name": "pull_request", "state": "open"}, False),
        ({"event_name": "pull_request", "state": "closed"}, False),
        ({"event_name": "branch"}, False),
        ({}, True),  # unknown: a poll is harmless
    ],
)
def test_relevant(payload: dict[str, str], wanted: bool) -> None:
    assert relevant(payload, "main")[0] is wanted


def test_receiver_answers() -> None:
    calls: list[int] = []

    def poll() -> WatchEvent:
        calls.append(1)
        if len(calls) == 2:
            raise GitHubError("GitHub refused")
        return WatchEvent(head="h", previous=None, action="dispatched")

    receiver = DoltHubReceiver(poll, "main")
    assert receiver.handle(b"not json")[0] == 400
    assert receiver.handle(b"[1]")[0] == 400
    assert receiver.handle(b'{"event_name": "push", "ref": "dev"}') == (
        200,
        {"action": "ignored", "reason": "push to dev, not main"},
    )
    assert calls == []
    status, answer = receiver.handle(b'{"event_name": "push", "ref": "main"}')
    assert status == 200 and answer["action"] == "dispatched" and answer["head"] == "h"
    status, answer = receiver.handle(b'{"event_name": "push", "ref": "main"}')
    assert status == 502 and answer["action"] == "failed"
