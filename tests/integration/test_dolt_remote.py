"""The Store's remote operations (clone, fetch, push, pull) against a real Dolt remote: a second
``dolt sql-server`` serving its remotesapi with a user and password (the mechanism DoltLab is
built on); the same behaviours run on the in-memory store. Failures leave both sides unchanged.
"""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from platform_kit import endpoints
from platform_kit import services as svc
from platform_kit.config import Config, DoltRemote, load_config
from platform_kit.errors import PushRejectedError, RemoteError, ServiceError
from platform_kit.store.base import ChangeSet, Store, TableSchema
from platform_kit.store.dolt import DoltStore
from platform_kit.store.memory import MemoryServer, MemoryStore, serve_remote
from tests.conftest import require
from tests.remote import (
    ADMIN_PASSWORD,
    KIT_USER,
    RemoteServer,
    start_clone_server,
    start_remote,
    stop,
)

SCHEMA = TableSchema(columns={"id": "string", "v": "int"}, primary_key=("id",))


def change(*ids: str, v: int = 1) -> list[ChangeSet]:
    return [ChangeSet("t", SCHEMA, inserts=[{"id": i, "v": v} for i in ids])]


def clone_config(root: Path, url: str) -> Config:
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: remote-test
            dolt: {{database: training, remote: "{url}"}}
            """
        )
    )
    return load_config(root / "platform.yaml")


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    try:
        server = start_remote(tmp_path_factory.mktemp("remote"))
    except Exception as exc:  # no dolt binary, or it would not start
        require("dolt sql-server with --remotesapi-port", str(exc))
    yield server
    stop(server.pid)


@pytest.fixture(scope="module")
def clone_server(
    remote: RemoteServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Config]:
    """The kit's local server, with the kit user's DOLT_REMOTE_PASSWORD."""
    config = clone_config(tmp_path_factory.mktemp("clone"), remote.url("training"))
    start_clone_server(config)
    yield config
    svc.services_down(config)


@dataclass
class Pair:
    """A database on a remote (written by its admin, as a reviewer would) and a clone of it."""

    origin: Store
    clone: Store
    make_clone: Callable[[DoltRemote], Store]


def dolt_pair(request: pytest.FixtureRequest) -> Pair:
    remote: RemoteServer = request.getfixturevalue("remote")
    config: Config = request.getfixturevalue("clone_server")
    name = f"r_{uuid.uuid4().hex[:10]}"
    remote.create_database(name)
    origin = DoltStore(remote.host, remote.port, "root", ADMIN_PASSWORD, name)
    local = endpoints.dolt_endpoint(config)

    def make(spec: DoltRemote) -> Store:
        return DoltStore(local.host, local.port, "root", "", name, remote=spec, remote_attempts=2)

    return Pair(origin, make(DoltRemote(url=remote.url(name, None), user=KIT_USER)), make)


def memory_pair(request: pytest.FixtureRequest) -> Pair:
    origin = MemoryStore("origin", server=MemoryServer())
    origin.create_database()
    spec = serve_remote(f"memory://{uuid.uuid4().hex[:10]}", origin)
    server = MemoryServer()

    def make(other: DoltRemote) -> Store:
        return MemoryStore("training", server=server, remote=other)

    return Pair(origin, make(spec), make)


@pytest.fixture(params=["dolt", "memory"])
def pair(request: pytest.FixtureRequest) -> Pair:
    pair = {"dolt": dolt_pair, "memory": memory_pair}[request.param](request)
    seeded = pair.origin.commit_changes("main", change("a"), "seed")
    assert seeded
    pair.clone.create_database()
    return pair


def test_create_database_clones_the_remote(pair: Pair) -> None:
    head = pair.origin.resolve("main")
    assert pair.clone.resolve("main") == head
    assert [r["id"] for r in pair.clone.read_table("t", "main")] == ["a"]
    pair.clone.create_database()  # idempotent: a clone that exists is kept
    assert pair.clone.resolve("main") == head
    assert pair.clone.fetch()["main"] == head


def test_push_a_data_branch(pair: Pair) -> None:
    pair.clone.create_branch("sheets/s", "main")
    commit = pair.clone.commit_changes("sheets/s", change("b"), "sync s")
    assert commit and pair.clone.push("sheets/s") == commit
    assert pair.origin.branches()["sheets/s"] == commit
    assert pair.clone.push("sheets/s") == commit  # nothing new: a no-op


def test_pull_fast_forwards_main_to_the_remote_head(pair: Pair) -> None:
    before = pair.clone.resolve("main")
    merged = pair.origin.commit_changes("main", change("c"), "merged on the remote")
    assert pair.clone.resolve("main") == before  # nothing moves until asked
    assert pair.clone.pull("main") == merged
    assert pair.clone.resolve("main") == merged
    assert pair.clone.pull("main") == merged  # again: nothing new
    # A branch that exists only on the remote is created here.
    pair.origin.create_branch("sheets/other", "main")
    assert pair.clone.pull("sheets/other") == merged


def test_a_push_that_is_not_a_fast_forward_is_refused(pair: Pair) -> None:
    pair.clone.create_branch("sheets/s", "main")
    pair.clone.push("sheets/s")
    theirs = pair.origin.commit_changes("sheets/s", change("r"), "someone else's push")
    ours = pair.clone.commit_changes("sheets/s", change("l"), "our sync")
    with pytest.raises(PushRejectedError, match="not a fast-forward"):
        pair.clone.push("sheets/s")
    assert pair.origin.branches()["sheets/s"] == theirs  # nothing lost on either side
    assert pair.clone.branches()["sheets/s"] == ours


def test_a_diverged_main_is_not_pulled_over(pair: Pair) -> None:
    theirs = pair.origin.commit_changes("main", change("r"), "remote")
    ours = pair.clone.commit_changes("main", change("l"), "local")
    with pytest.raises(RemoteError, match="diverged"):
        pair.clone.pull("main")
    assert pair.clone.resolve("main") == ours and pair.origin.resolve("main") == theirs


def test_a_clone_ahead_of_the_remote_stays(pair: Pair) -> None:
    ours = pair.clone.commit_changes("main", change("l"), "local")
    assert pair.clone.pull("main") == ours


# ---------------------------------------------------------------------------- Dolt's failures


def test_an_unreachable_remote_is_retried_then_one_line(
    clone_server: Config, remote: RemoteServer
) -> None:
    local = endpoints.dolt_endpoint(clone_server)
    name = f"r_{uuid.uuid4().hex[:10]}"
    dead = DoltRemote(url=f"http://127.0.0.1:{svc.free_port()}/{name}", user=KIT_USER)
    store = DoltStore(local.host, local.port, "root", "", name, remote=dead, remote_attempts=2)
    started = time.monotonic()
    with pytest.raises(ServiceError, match="unreachable") as caught:
        store.create_database()
    assert "tried 2 times" in str(caught.value) and "\n" not in str(caught.value)
    assert time.monotonic() - started > 1.0  # the retry waited
    probe = DoltStore(local.host, local.port, "root", "", name)
    assert not probe._database_exists(name)


def test_wrong_credentials_are_refused_by_name(
    remote: RemoteServer, clone_server: Config, tmp_path: Path
) -> None:
    name = f"r_{uuid.uuid4().hex[:10]}"
    remote.create_database(name)
    local = endpoints.dolt_endpoint(clone_server)
    stranger = DoltRemote(url=remote.url(name, None), user="nobody")
    store = DoltStore(local.host, local.port, "root", "", name, remote=stranger)
    with pytest.raises(RemoteError, match="refused user 'nobody'") as caught:
        store.create_database()
    assert "DOLT_REMOTE_PASSWORD" in str(caught.value)
    assert not store._database_exists(name)
    # The right user with the wrong password (the server's DOLT_REMOTE_PASSWORD).
    config = clone_config(tmp_path / "wrong", remote.url(name))
    start_clone_server(config, password="not-the-password")
    try:
        wrong = endpoints.dolt_endpoint(config)
        store = DoltStore(
            wrong.host,
            wrong.port,
            "root",
            "",
            name,
            remote=DoltRemote(remote.url(name, None), KIT_USER),
        )
        with pytest.raises(RemoteError, match=f"refused user '{KIT_USER}'") as caught:
            store.create_database()
        assert "not-the-password" not in str(caught.value)
        assert not store._database_exists(name)
    finally:
        svc.services_down(config)
    assert remote.head(name)  # the remote is as it was
