"""A receiver for DoltHub's webhooks that forwards merges to main as ``dolt-main-updated``.

DoltHub POSTs a JSON payload for push, pull request and branch events. The receiver treats a
relevant one only as a wake-up: it does not trust the commit in the payload, but runs one
watcher poll (:class:`platform_kit.github.Announcer`), which reads the head of Dolt main itself
and claims it in the store like every watcher. So a forged or repeated hook can at most cause a
poll, a hook and the scheduled watchers never announce the same head twice, and a lost hook is
caught by the next scheduled poll.

Events that cannot have moved main are acknowledged and ignored: a push to another branch, a
pull request that is not merged, branch creation or deletion.

With ``dolt.remote`` (the hooks come from that remote: DoltHub, DoltLab), each poll first brings
the clone's main up to the remote's head (:meth:`Announcer.poll`), so the head announced is the
remote's.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from platform_kit.config import Config
from platform_kit.errors import PlatformKitError
from platform_kit.github import Announcer, GitHubClient, WatchEvent
from platform_kit.store.base import Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # DoltHub's payloads are a few hundred bytes


def relevant(payload: Mapping[str, Any], main_branch: str) -> tuple[bool, str]:
    """Whether a DoltHub hook payload may mean that ``main_branch`` moved, and why (not)."""
    event = str(payload.get("event_name") or payload.get("event") or "").lower()
    if "branch" in event and "push" not in event:
        return False, f"{event} event"
    if "pull" in event:
        state = str(payload.get("state") or "").lower()
        if state and state != "merged":
            return False, f"pull request {state}, not merged"
        return True, "pull request merged"
    if event == "push":
        ref = str(payload.get("ref") or "").removeprefix("refs/heads/")
        if ref and ref != main_branch:
            return False, f"push to {ref}, not {main_branch}"
        return True, f"push to {main_branch}"
    # An event this receiver does not know: polling is cheap and never announces a head twice.
    return True, f"event {event or '(unnamed)'}"


class DoltHubReceiver:
    """Turns hook deliveries into watch polls; one poll at a time.

    Args:
        poll: runs one watch poll and returns its event (raises PlatformKitError on failure).
        main_branch: the Dolt branch whose head is announced.
    """

    def __init__(self, poll: Callable[[], WatchEvent], main_branch: str) -> None:
        self._poll = poll
        self.main_branch = main_branch
        self._lock = threading.Lock()

    def handle(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON answer for one delivery."""
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": "the body is not JSON"}
        if not isinstance(payload, dict):
            return 400, {"error": "the body is not a JSON object"}
        wanted, why = relevant(payload, self.main_branch)
        if not wanted:
            return 200, {"action": "ignored", "reason": why}
        with self._lock:
            try:
                event = self._poll()
            except PlatformKitError as exc:
                log.warning("dolthub hook (%s): %s", why, exc)
                # 502 tells DoltHub the delivery failed; the scheduled watcher catches up anyway.
                return 502, {"action": "failed", "reason": why, "error": str(exc)}
        return 200, {**event.to_json(), "reason": why}


def make_server(receiver: DoltHubReceiver, host: str, port: int, path: str = "/") -> HTTPServer:
    """An HTTP server that hands POSTs to ``path`` to the receiver (port 0: any free port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != path:
                self._answer(404, {"error": f"POST hooks to {path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, {"error": "payload too large"})
                return
            status, answer = receiver.handle(self.rfile.read(length))
            self._answer(status, answer)

        def do_GET(self) -> None:
            self._answer(200, {"status": "ok", "branch": receiver.main_branch})

        def _answer(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.info("dolthub hook: " + format, *args)

    return HTTPServer((host, port), Handler)


def receiver_for(
    config: Config,
    store: Store,
    *,
    client: GitHubClient | None = None,
    report: Callable[[WatchEvent], None] | None = None,
) -> DoltHubReceiver:
    """A receiver whose polls are watcher polls of the project's Dolt main; a head it claimed but
    could not dispatch is sent again at its next delivery."""
    announcer = Announcer(config, store, client or GitHubClient.from_environment(config))

    def poll() -> WatchEvent:
        event = announcer.poll()
        if report is not None:
            report(event)
        return event

    return DoltHubReceiver(poll, config.dolt.main_branch)
