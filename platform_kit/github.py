"""GitHub, narrowly: start workflows, announce new Dolt main heads, and watch for them.

Three entry points, each a thin layer over :class:`GitHubClient` (PyGithub):

- :func:`dispatch_workflow` sends ``workflow_dispatch`` and returns the run's URL when GitHub
  gives one (github.com answers with the run since 2025; older servers get a lookup of the newest
  run of that workflow instead).
- :func:`notify_main_updated` sends ``repository_dispatch`` of type ``dolt-main-updated`` whose
  ``client_payload`` names the Dolt commit, database and branch (``data merge --notify`` calls it).
- :func:`watch` polls the head of Dolt main and sends that dispatch once per new head.

Both record what they announce with :meth:`Store.claim` (``announced:REPO:DB:BRANCH:COMMIT``)
before they send it, so one new head starts one run however many watchers (one per runner), hooks
and ``data merge --notify`` see it: the claim's first caller dispatches, the others do nothing.

The token comes from ``GITHUB_TOKEN`` and is never printed; GitHub's errors become
:class:`~platform_kit.errors.GitHubError`, and transient ones are retried first.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from github import Auth, Github, GithubException

from platform_kit import env
from platform_kit.config import Config
from platform_kit.errors import GitHubError, PlatformKitError, UsageError
from platform_kit.retry import retry
from platform_kit.store.base import Store

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
DOLT_MAIN_UPDATED = "dolt-main-updated"
# Statuses worth another try: rate limits and a server or proxy that is briefly unwell.
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class DispatchResult:
    """A workflow_dispatch GitHub accepted; the run is known when GitHub returned or listed it."""

    repository: str
    workflow: str
    ref: str
    inputs: Mapping[str, str]
    run_id: int | None = None
    run_url: str | None = None  # the run's page (html_url) for people

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "workflow": self.workflow,
            "ref": self.ref,
            "inputs": dict(self.inputs),
            "run_id": self.run_id,
            "run_url": self.run_url,
        }


class GitHubClient:
    """The few GitHub calls the kit makes, on one repository.

    Args:
        repository: ``owner/name``.
        token: a token allowed to dispatch (Actions: write for workflow_dispatch, Contents: write
            for repository_dispatch). Never printed.
        base_url: the REST API root, e.g. ``https://ghe.example.com/api/v3``.
        attempts: tries for a call that fails transiently (rate limit, 5xx, connection reset).
        run_lookup_seconds: how long to look for the run of a dispatch when GitHub does not
            return it (runs appear a few seconds after the dispatch).
    """

    def __init__(
        self,
        repository: str,
        token: str,
        base_url: str = DEFAULT_API_URL,
        *,
        attempts: int = 5,
        first_delay: float = 0.5,
        run_lookup_seconds: float = 10.0,
        timeout: int = 15,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise UsageError(f"GitHub repository {repository!r} is not owner/name")
        if not token:
            raise GitHubError(
                "GITHUB_TOKEN is not set",
                hint="export a token allowed to run workflows (Actions: write, Contents: write)",
            )
        self.repository = repository
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.first_delay = first_delay
        self.run_lookup_seconds = run_lookup_seconds
        self.sleep = sleep
        # Our own retry (platform_kit.retry) decides what is transient; PyGithub's would also
        # retry, silently and for minutes. No client-side throttling: the kit makes few calls.
        self._github = Github(
            base_url=self.base_url,
            auth=Auth.Token(token),
            timeout=timeout,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self._repo: Any = None

    @classmethod
    def from_environment(cls, config: Config | None = None, **options: Any) -> GitHubClient:
        """A client from GITHUB_API_URL, GITHUB_TOKEN and GITHUB_REPOSITORY (else the config's
        ``github.repository``): the variables Actions sets on every runner."""
        repository = env.get(env.GITHUB_REPOSITORY) or (
            config.github.repository if config is not None and config.github else None
        )
        if not repository:
            where = f" in {config.path}" if config is not None else ""
            raise UsageError(
                "no GitHub repository to talk to",
                hint=f"set 'github: {{repository: owner/name}}'{where} or GITHUB_REPOSITORY",
            )
        return cls(
            repository,
            env.get(env.GITHUB_TOKEN) or "",
            env.get(env.GITHUB_API_URL) or DEFAULT_API_URL,
            **options,
        )

    # -- calls

    def dispatch_workflow(
        self, workflow: str, ref: str, inputs: Mapping[str, str] | None = None
    ) -> DispatchResult:
        """Start ``workflow`` (a file name such as ``pipeline.yml``, or its id) on ``ref``.

        Raises:
            GitHubError: the repository or workflow does not exist, the token may not run it, or
                GitHub rejected the inputs.
        """
        inputs = dict(inputs or {})
        flow = self._call(
            lambda: self._repository().get_workflow(workflow),
            f"find workflow {workflow!r} in {self.repository}",
            hint=f"is .github/workflows/{workflow} on the default branch of {self.repository}?",
        )
        started = datetime.now(UTC)
        run = self._call(
            lambda: self._create_dispatch(flow, ref, inputs),
            f"dispatch workflow {workflow!r} on {ref!r} in {self.repository}",
            hint="check the workflow's 'on: workflow_dispatch' inputs and the token's Actions permission",
            retry_transient=False,  # a retried POST could start two runs
        )
        if run is None:
            run = self._newest_run(flow, ref, started)
        return DispatchResult(
            repository=self.repository,
            workflow=workflow,
            ref=ref,
            inputs=inputs,
            run_id=run[0] if run else None,
            run_url=run[1] if run else None,
        )

    def repository_dispatch(self, event_type: str, payload: Mapping[str, Any]) -> None:
        """Send ``repository_dispatch``; workflows with ``on: repository_dispatch`` start.

        Raises:
            GitHubError: GitHub refused it (permissions, payload limits).
        """
        if not event_type or len(event_type) > 100:
            raise UsageError(f"event type {event_type!r} must be 1 to 100 characters")
        if len(payload) > 10:
            raise UsageError(f"client_payload has {len(payload)} top-level keys; GitHub allows 10")
        body = {"event_type": event_type, "client_payload": dict(payload)}

        def send() -> None:
            url = f"{self._repository().url}/dispatches"
            self._github.requester.requestJsonAndCheck("POST", url, input=body)

        # Retrying is safe: a repeated dispatch of the same commit plans nothing new.
        self._call(
            send,
            f"send repository_dispatch {event_type!r} to {self.repository}",
            hint="the token needs Contents: write on the repository",
        )

    # -- internals

    def _repository(self) -> Any:
        if self._repo is None:
            self._repo = self._call(
                lambda: self._github.get_repo(self.repository),
                f"open repository {self.repository}",
                hint="check GITHUB_REPOSITORY / github.repository and the token's access",
            )
        return self._repo

    def _create_dispatch(
        self, flow: Any, ref: str, inputs: dict[str, str]
    ) -> tuple[int, str] | None:
        """Dispatch, asking for the run's details; servers that do not know that field refuse it
        with 422, and then the dispatch is sent again without it."""
        try:
            run = flow.create_dispatch(ref, inputs, throw=True, return_run_details=True)
        except GithubException as exc:
            if exc.status == 422 and "return_run_details" in json.dumps(exc.data):
                flow.create_dispatch(ref, inputs, throw=True)
                return None
            raise
        if run is True or run is None:  # accepted (204) without details
            return None
        return int(run.id), str(run.html_url or run.url)

    def _newest_run(self, flow: Any, ref: str, since: datetime) -> tuple[int, str] | None:
        """The newest workflow_dispatch run of ``flow`` on ``ref`` created since the dispatch."""
        # The server's clock may differ from ours; a little slack keeps the run in the window.
        created = (since - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        deadline = time.monotonic() + self.run_lookup_seconds
        delay = 0.5
        while True:
            runs = self._call(
                lambda: list(
                    flow.get_runs(branch=ref, event="workflow_dispatch", created=f">={created}")[:5]
                ),
                f"list runs of {flow.path}",
            )
            if runs:
                newest = max(runs, key=lambda r: (r.created_at, r.id))
                return int(newest.id), str(newest.html_url)
            if time.monotonic() + delay > deadline:
                return None
            self.sleep(delay)
            delay = min(delay * 2, 4.0)

    def _call(
        self,
        fn: Callable[[], Any],
        what: str,
        *,
        hint: str | None = None,
        retry_transient: bool = True,
    ) -> Any:
        try:
            return retry(
                fn,
                transient=_is_transient if retry_transient else (lambda _exc: False),
                what=f"GitHub: {what}",
                attempts=self.attempts,
                first_delay=self.first_delay,
                sleep=self.sleep,
            )
        except GithubException as exc:
            message = _message(exc)
            if exc.status == 401:
                hint = "GITHUB_TOKEN is invalid or expired"
            elif _is_transient(exc):
                hint = f"GitHub kept failing after {self.attempts} tries; try again later"
            raise GitHubError(
                f"GitHub refused to {what}: {exc.status} {message}",
                hint=hint,
            ) from exc
        except requests.RequestException as exc:
            raise GitHubError(
                f"cannot reach GitHub at {self.base_url} to {what}: {type(exc).__name__}",
                hint="check GITHUB_API_URL and the network",
            ) from exc


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, GithubException):
        if exc.status == 403 and "rate limit" in _message(exc).lower():
            return True
        return exc.status in _TRANSIENT_STATUSES
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"]).splitlines()[0]
    return str(data or "")[:200]


# ---------------------------------------------------------------------------- entry points


def dispatch_workflow(
    config: Config | None,
    workflow: str,
    ref: str = "main",
    inputs: Mapping[str, str] | None = None,
    *,
    client: GitHubClient | None = None,
) -> DispatchResult:
    """``workflow_dispatch`` a workflow of the project's repository (see GitHubClient)."""
    client = client or GitHubClient.from_environment(config)
    return client.dispatch_workflow(workflow, ref, inputs)


def main_updated_payload(config: Config, commit: str) -> dict[str, str]:
    """The ``client_payload`` of ``dolt-main-updated``; pipeline.yml reads ``commit``."""
    return {
        "commit": commit,
        "database": config.dolt.database,
        "branch": config.dolt.main_branch,
        "project": config.project,
    }


def announced_key(repository: str, database: str, branch: str, commit: str) -> str:
    """The claim that marks ``commit`` as announced to ``repository`` (GitHub names are
    case-insensitive, so the repository is lower-cased: two spellings are one claim)."""
    return f"announced:{repository.lower()}:{database}:{branch}:{commit}"


def notify_main_updated(
    config: Config, store: Store, commit: str, *, client: GitHubClient | None = None
) -> dict[str, str] | None:
    """Send ``repository_dispatch`` ``dolt-main-updated`` for ``commit`` unless it was announced
    already (by a watcher, the DoltHub hook or another merge); returns the payload sent, or None.

    The announcement is claimed in the store before it is sent, so of all the processes and
    machines that see the same new head, exactly one dispatches it.

    Raises:
        GitHubError: GitHub refused or could not be reached (after retries). The head stays
            claimed: no watcher sends it again, and the hint says how to start the run by hand.
    """
    client = client or GitHubClient.from_environment(config)
    key = announced_key(client.repository, config.dolt.database, config.dolt.main_branch, commit)
    if not store.claim(key):
        return None
    payload = main_updated_payload(config, commit)
    try:
        client.repository_dispatch(DOLT_MAIN_UPDATED, payload)
    except GitHubError as exc:
        raise _undelivered(exc) from exc
    return payload


def _undelivered(exc: GitHubError) -> GitHubError:
    """A dispatch lost after its head was claimed. Only the claiming process would send it again,
    and it is exiting: a person starts the run (a later head's run would cover it too)."""
    todo = (
        "the Dolt head is recorded as announced: start its run with "
        "'platform-kit github dispatch pipeline.yml'"
    )
    return GitHubError(exc.message, hint=f"{exc.hint}; {todo}" if exc.hint else todo)


# ---------------------------------------------------------------------------- watch


@dataclass(frozen=True)
class WatchEvent:
    """One poll: the head seen, and what was done about it."""

    head: str | None
    previous: str | None  # the head this process saw at its previous poll
    action: str  # "dispatched", "unchanged", "announced-elsewhere", "failed"
    error: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "previous": self.previous,
            "action": self.action,
            "error": self.error,
            "at": self.at.isoformat(),
        }


class Announcer:
    """Announces new heads of Dolt main, each once across every process that shares the store.

    What was announced lives in the store (:meth:`Store.claim`), where every runner and the DoltHub
    hook see it; this object only remembers the head it saw last (to skip the claim when nothing
    moved) and a head it claimed but could not dispatch, which it tries again at its next poll.
    """

    def __init__(self, config: Config, store: Store, client: GitHubClient) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.branch = config.dolt.main_branch
        self.last: str | None = None
        self.owed: str | None = None  # claimed by this process, not yet dispatched

    def poll(self) -> WatchEvent:
        """Read the head once; dispatch it if this process wins its claim (or owes it).

        Raises:
            GitHubError, StoreError, ServiceError: the poll failed.
        """
        previous = self.last
        if self.config.dolt.remote is not None:  # announce the remote's head (DoltHub, DoltLab)
            self.store.create_database()  # the first poll clones
            head = self.store.pull(self.branch)
        else:
            head = self.store.resolve(self.branch)
        self.last = head
        if head == previous and self.owed != head:
            return WatchEvent(head=head, previous=previous, action="unchanged")
        if self.owed != head:
            # A newer head supersedes an owed one: the run it starts trains from the newest head.
            self.owed = None
            key = announced_key(
                self.client.repository, self.config.dolt.database, self.branch, head
            )
            if not self.store.claim(key):
                return WatchEvent(head=head, previous=previous, action="announced-elsewhere")
            self.owed = head
        self.client.repository_dispatch(DOLT_MAIN_UPDATED, main_updated_payload(self.config, head))
        self.owed = None
        return WatchEvent(head=head, previous=previous, action="dispatched")


def watch(
    config: Config,
    store: Store,
    *,
    once: bool = False,
    interval: float = 60.0,
    client: GitHubClient | None = None,
    report: Callable[[WatchEvent], None] | None = None,
    max_polls: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[WatchEvent]:
    """Poll the head of Dolt main; send ``dolt-main-updated`` once for every head not yet sent.

    Only the newest head is announced when several commits landed between polls: it contains
    the others, and the pipeline trains by fingerprint, so none of their changes is missed. Any
    number of watchers (one per runner) and ``data merge --notify`` may run at once: each head is
    claimed in the store first, and only the claim's winner dispatches.

    Args:
        once: poll once; errors are raised. Otherwise poll every ``interval`` seconds forever
            (or ``max_polls`` times), reporting errors and trying again at the next poll.
        report: called with each poll's event (the CLI prints them).

    Returns:
        The events of every poll.

    Raises:
        GitHubError, StoreError, ServiceError: with ``once``, when a poll fails.
    """
    if interval <= 0 and not once:
        raise UsageError(f"--interval must be positive, got {interval}")
    announcer = Announcer(config, store, client or GitHubClient.from_environment(config))
    events: list[WatchEvent] = []
    polls = 0
    while True:
        polls += 1
        try:
            event = announcer.poll()
        except PlatformKitError as exc:
            if once and announcer.owed is not None and isinstance(exc, GitHubError):
                raise _undelivered(exc) from exc
            if once:
                raise
            event = WatchEvent(head=None, previous=announcer.last, action="failed", error=str(exc))
            log.warning("watch: %s", exc)
        events.append(event)
        if report is not None:
            report(event)
        if once or (max_polls is not None and polls >= max_polls):
            return events
        sleep(interval)
