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
from platform_kit.config import Config, DoltRemote, SheetConfig, load_config
from platform_kit.errors import PushRejectedError, RemoteError, ServiceError
from platform_kit.sheets import RawSheet
from platform_kit.sheets.files import FileSheetReader
from platform_kit.store.base import ChangeSet, Store, TableSchema
from platform_kit.store.dolt import DoltStore
from platform_kit.store.memory import MemoryServer, MemoryStore, serve_remote
from platform_kit.sync import sync
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
    fresh: Callable[[], Store]  # another clone of the same remote, on a machine of its own


def dolt_pair(request: pytest.FixtureRequest) -> Pair:
    remote: RemoteServer = request.getfixturevalue("remote")
    config: Config = request.getfixturevalue("clone_server")
    name = f"r_{uuid.uuid4().hex[:10]}"
    remote.create_database(name)
    origin = DoltStore(remote.host, remote.port, "root", ADMIN_PASSWORD, name)
    local = endpoints.dolt_endpoint(config)

    def make(spec: DoltRemote) -> Store:
        return DoltStore(local.host, local.port, "root", "", name, remote=spec, remote_attempts=2)

    spec = DoltRemote(url=remote.url(name, None), user=KIT_USER)

    def fresh() -> Store:
        other = f"{name}_{uuid.uuid4().hex[:6]}"
        return DoltStore(local.host, local.port, "root", "", other, remote=spec, remote_attempts=2)

    return Pair(origin, make(spec), make, fresh)


def memory_pair(request: pytest.FixtureRequest) -> Pair:
    origin = MemoryStore("origin", server=MemoryServer())
    origin.create_database()
    spec = serve_remote(f"memory://{uuid.uuid4().hex[:10]}", origin)
    server = MemoryServer()

    def make(other: DoltRemote) -> Store:
        return MemoryStore("training", server=server, remote=other)

    def fresh() -> Store:
        return MemoryStore("training", server=MemoryServer(), remote=spec)

    return Pair(origin, make(spec), make, fresh)


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


def test_a_clone_another_writer_made_meanwhile_is_kept(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first runs at once on one server: the one that looked first and cloned second."""
    head = pair.origin.resolve("main")
    assert pair.clone.remote is not None
    late = pair.make_clone(pair.clone.remote)
    stale = [True]
    real: Callable[[str], bool] = getattr(late, "_database_exists", lambda name: True)
    monkeypatch.setattr(  # the in-memory store has no such check to be stale: a no-op there
        late,
        "_database_exists",
        lambda name: False if stale and stale.pop() else real(name),
        raising=False,
    )
    late.create_database()
    assert late.resolve("main") == head
    assert late.fetch()["main"] == head


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


def test_a_push_carries_the_sync_tags_of_the_history_it_pushes(pair: Pair) -> None:
    pair.clone.create_branch("sheets/s", "main")
    first = pair.clone.commit_changes("sheets/s", change("b"), "sync s")
    assert first
    pair.clone.set_tag("sync/sheets/s/s", first, "note 1")
    pair.clone.create_branch("sheets/u", "main")  # not pushed: neither is its tag
    unpushed = pair.clone.commit_changes("sheets/u", change("u"), "sync u")
    assert unpushed
    pair.clone.set_tag("sync/sheets/u/u", unpushed, "note u")
    pair.clone.push("sheets/s")
    assert pair.origin.tag("sync/sheets/s/s") == (first, "note 1")
    assert pair.origin.tag("sync/sheets/u/u") is None
    # The tag moves with the next sync, and on the remote with the next push.
    second = pair.clone.commit_changes("sheets/s", change("c"), "sync s again")
    assert second
    pair.clone.set_tag("sync/sheets/s/s", second, "note 2")
    pair.clone.push("sheets/s")
    assert pair.origin.tag("sync/sheets/s/s") == (second, "note 2")
    # A fresh clone has it; an older clone gets the moved tag with a fetch.
    fresh = pair.fresh()
    fresh.create_database()
    assert fresh.tag("sync/sheets/s/s") == (second, "note 2")
    third = pair.origin.commit_changes("sheets/s", change("d"), "a sync elsewhere")
    assert third
    pair.origin.set_tag("sync/sheets/s/s", third, "note 3")
    fresh.fetch()
    assert fresh.tag("sync/sheets/s/s") == (third, "note 3")


def sheet_project(root: Path, rows: list[str]) -> Config:
    root.mkdir(parents=True, exist_ok=True)
    (root / "s.csv").write_text("id,v\n" + "".join(f"{r},1\n" for r in rows))
    (root / "platform.yaml").write_text(
        textwrap.dedent(
            """\
            project: remote-test
            dolt: {database: training}
            sheets:
              - name: s
                source: {file: s.csv}
                primary_key: [id]
                columns: {id: string, v: int}
            """
        )
    )
    return load_config(root / "platform.yaml")


class CountingReader(FileSheetReader):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, sheet: SheetConfig) -> RawSheet:
        self.reads += 1
        return super().read(sheet)


def test_a_fresh_clone_skips_a_sheet_that_did_not_change(pair: Pair, tmp_path: Path) -> None:
    """The sync tags travel with pushes: a fresh runner's no-change sync reads no sheet."""
    config = sheet_project(tmp_path / "analyst", ["x", "y"])
    report = sync(config, pair.clone)
    (first,) = report.sheets
    assert first.commit and first.branch == "sheets/s"
    pair.clone.push("sheets/s")  # 'sync --push': the data branch for review
    pair.clone.merge("sheets/s", "main", None)
    pair.clone.push("main")  # 'run': main, after the merge

    # 'sync --push' on a fresh runner: the data branch is pulled, then the sheet is unchanged.
    fresh = pair.fresh()
    fresh.create_database()
    fresh.pull("sheets/s")
    reader = CountingReader()
    (again,) = sync(config, fresh, reader=lambda s: reader).sheets
    assert reader.reads == 0 and again.revision == "unchanged" and again.commit is None
    # 'run' on a fresh runner: main only, moved on by another table's commit since the sync.
    pair.origin.commit_changes("main", change("z"), "another sheet's merge")
    other = pair.fresh()
    other.create_database()
    assert "sheets/s" not in other.branches()
    (again,) = sync(config, other, reader=lambda s: reader).sheets
    assert (
        reader.reads == 0 and again.revision == "unchanged" and "sheets/s" not in other.branches()
    )
    # A changed sheet is read, and compared with what the clone holds.
    config = sheet_project(tmp_path / "analyst", ["x", "y", "w"])
    (changed,) = sync(config, other, reader=lambda s: reader).sheets
    assert reader.reads == 1 and (changed.added, changed.changed, changed.deleted) == (1, 0, 0)


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
