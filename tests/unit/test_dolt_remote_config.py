"""dolt.remote in platform.yaml: URLs, users, where pull requests open, and its secrets."""

from __future__ import annotations

from pathlib import Path

import mysql.connector
import pytest

from platform_kit import env
from platform_kit.config import DoltRemote, parse_config
from platform_kit.data import pull_request_url
from platform_kit.errors import (
    ConfigError,
    PushRejectedError,
    RemoteError,
    ServiceError,
    StoreError,
)
from platform_kit.store.dolt import DoltStore
from platform_kit.store.memory import MemoryStore


def remote_of(value: str) -> DoltRemote | None:
    config = parse_config(f"project: p\ndolt:\n  remote: {value}\n", Path("/p/platform.yaml"))
    return config.dolt.remote


def test_no_remote_by_default() -> None:
    assert parse_config("project: p\n", Path("/p/platform.yaml")).dolt.remote is None
    assert remote_of("null") is None


def test_a_sql_server_remotesapi_with_a_user() -> None:
    remote = remote_of("http://kit@127.0.0.1:50051/training")
    assert remote == DoltRemote(url="http://127.0.0.1:50051/training", user="kit")
    assert remote.pull_request_url is None  # no pull request pages there


@pytest.mark.parametrize(
    ("url", "page"),
    [
        (
            "https://doltremoteapi.dolthub.com/acme/training",
            "https://www.dolthub.com/repositories/acme/training/pulls/new?from=sheets%2Fx&to=main",
        ),
        (
            "https://doltlab.example.com:50051/acme/training",
            "https://doltlab.example.com/repositories/acme/training/pulls/new?from=sheets%2Fx&to=main",
        ),
    ],
)
def test_dolthub_and_doltlab_pull_request_pages(url: str, page: str) -> None:
    remote = remote_of(url)
    assert remote is not None and remote.user is None
    assert pull_request_url(remote, "sheets/x", "main") == page


def test_a_review_url_of_its_own() -> None:
    remote = remote_of(
        '{url: "http://h:1/db", review_url: "https://review.example/{main}...{branch}"}'
    )
    assert remote is not None
    assert (
        pull_request_url(remote, "sheets/x", "main") == "https://review.example/main...sheets%2Fx"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://kit:s3cret@h:1/db", "DOLT_REMOTE_PASSWORD"),
        ("mysql://h:1/db", "expected a Dolt remote URL"),
        ("{url: http://h:1/db, review_url: ftp://x}", "expected an http"),
        ("{review_url: http://x}", "missing required key 'url'"),
    ],
)
def test_bad_remotes_name_the_line(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        remote_of(value)
    assert "platform.yaml:3: dolt.remote" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_remote_password_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.DOLT_REMOTE_PASSWORD, "remote-pw-123")
    assert env.redact("refused remote-pw-123") == "refused ***"


def test_a_store_without_a_remote_says_where_to_set_one() -> None:
    store = MemoryStore()
    store.create_database()
    with pytest.raises(RemoteError, match=r"has no remote.*dolt.remote"):
        store.push("main")


@pytest.mark.parametrize(
    ("message", "kind", "text"),
    [
        (
            "could not access dolt url 'http://h:1/db': rpc error: code = Unavailable desc = "
            'connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: '
            'connect: connection refused"',
            ServiceError,
            "unreachable (fetching; tried 3 times): dial tcp 127.0.0.1:1: connect: connection refused",
        ),
        (
            "could not access dolt url 'http://h:1/db': rpc error: code = Unauthenticated desc = "
            "API Authentication Failure: Access denied for user 'kit' (errno 1045)",
            RemoteError,
            "refused user 'kit' (fetching)",
        ),
        (
            "To http://h:1/db\n ! [rejected]            main -> main (non-fast-forward)\n"
            "error: failed to push some refs",
            PushRejectedError,
            "not a fast-forward",
        ),
        (
            "must set DOLT_REMOTE_PASSWORD environment variable",
            RemoteError,
            "no DOLT_REMOTE_PASSWORD",
        ),
        (
            "unknown remote; 'http://h:1/db' does not appear to be a dolt database.",
            RemoteError,
            "there is no Dolt database at",
        ),
        ("command denied to user 'kit_read'@'%'", StoreError, "Dolt refused CALL DOLT_FETCH"),
    ],
)
def test_remote_errors_are_one_line_naming_the_cause(
    message: str, kind: type[Exception], text: str
) -> None:
    store = DoltStore("127.0.0.1", 1, "kit", "", "db", remote=DoltRemote("http://h:1/db", "kit"))
    error = store._remote_error(
        mysql.connector.Error(msg=message, errno=1105),
        DoltRemote("http://h:1/db", "kit"),
        "fetching",
        "DOLT_FETCH",
    )
    assert type(error) is kind and text in str(error)
    assert "\n" not in str(error)
