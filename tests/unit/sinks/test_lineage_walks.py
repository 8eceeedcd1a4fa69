"""The lineage index stays exact, and every process gets a walk in one step.

In the process that owns the engine: rows inserted through any of its stores reach the next walk
without a reload, any other write makes the next walk load the index again. In another process:
one request to the owner per walk, answered from the owner's index, which sees the owner's
writes. The owner is a real second process (chDB hosts one engine per process).
"""

from __future__ import annotations

import http.client
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from auditline.sinks import walks as walks_module
from auditline.sinks.migrate import migrate
from auditline.sinks.queries import Provenance
from auditline.sinks.rows import EDGE_COLUMNS
from auditline.sinks.store import Store, connect
from auditline.sinks.walks import IndexWalks, OwnerWalks

from auditline.errors import SinkError
from auditline.settings import ClickHouseSettings
from tests.unit.sinks.test_live_queries import _start, _stop

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def edge(src: str, dst: str, minute: int = 0, *, closes: bool = False) -> tuple[Any, ...]:
    at = T0 + timedelta(minutes=minute)
    return (src, dst, "derived_from", at, at if closes else None, uuid4(), {})


def nodes(walks: Any, start: str, *, minute: int | None = None) -> dict[str, int]:
    as_of = datetime(2200, 1, 1, tzinfo=UTC) if minute is None else T0 + timedelta(minutes=minute)
    return {node: depth for node, depth, _, _ in
            walks.walk(start, upstream=False, depth=10, as_of=as_of)}  # fmt: skip


class Loads:
    """The store's reads as a pyarrow table, counted: each is a load of the index."""

    def __init__(self, store: Store) -> None:
        self.store, self.count = store, 0

    def __call__(self, sql: str) -> Any:
        self.count += 1
        return self.store.arrow(sql)


@pytest.fixture
def owned(store_settings: ClickHouseSettings) -> Iterator[tuple[Store, IndexWalks, Loads]]:
    store = connect(store_settings)
    migrate(store)
    assert isinstance(store.walks, IndexWalks)
    loads = Loads(store)
    yield store, IndexWalks(store.walks.indexes, store.database, loads), loads
    store.close()


def test_rows_inserted_through_any_store_of_the_engine_reach_the_next_walk(
    owned: tuple[Store, IndexWalks, Loads], store_settings: ClickHouseSettings
) -> None:
    store, walks, loads = owned
    store.insert("lineage_edges", EDGE_COLUMNS, [edge("x", "y")])
    assert nodes(walks, "x") == {"y": 1} and loads.count == 1
    second = connect(store_settings)  # a second connection in this process: the same engine
    try:
        assert not second.via_owner
        second.insert("lineage_edges", EDGE_COLUMNS, [edge("y", "z", 5)])
    finally:
        second.close()
    assert nodes(walks, "x") == {"y": 1, "z": 2}
    store.insert("lineage_edges", EDGE_COLUMNS, [edge("y", "z", 10, closes=True), edge("é", "x")])
    assert nodes(walks, "x") == {"y": 1} and nodes(walks, "x", minute=7) == {"y": 1, "z": 2}
    assert nodes(walks, "é") == {"x": 1, "y": 2}
    assert loads.count == 1  # merged in memory, not read again


def test_any_other_write_makes_the_next_walk_load_again(
    owned: tuple[Store, IndexWalks, Loads], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, walks, loads = owned
    db = f"`{store.database}`.lineage_edges"
    store.insert("lineage_edges", EDGE_COLUMNS, [edge("x", "y"), edge("y", "z")])
    assert nodes(walks, "x") == {"y": 1, "z": 2} and loads.count == 1
    store.command(f"ALTER TABLE {db} DELETE WHERE src = 'y'", mutations_sync=2)
    assert nodes(walks, "x") == {"y": 1} and loads.count == 2
    store.rows(
        f"INSERT INTO {db} (src, dst, edge_type, valid_from) VALUES ('y', 'w', 'moved_to', now())"
    )
    assert nodes(walks, "x") == {"y": 1, "w": 2} and loads.count == 3
    naive = ("w", "v", "derived_from", datetime(2026, 1, 5), None, uuid4(), {})  # not as the sink
    store.insert("lineage_edges", EDGE_COLUMNS, [naive])
    assert nodes(walks, "x") == {"y": 1, "w": 2, "v": 3} and loads.count == 4
    assert nodes(walks, "x") == {"y": 1, "w": 2, "v": 3} and loads.count == 4
    with pytest.raises(SinkError):  # a failed insert may have stored some of its rows
        store.insert("lineage_edges", EDGE_COLUMNS, [("v", "u", "derived_from", "no time")])
    assert nodes(walks, "x") == {"y": 1, "w": 2, "v": 3} and loads.count == 5
    monkeypatch.setattr(walks_module, "PENDING_MAX", 1)  # more rows than may wait for a walk
    store.insert("lineage_edges", EDGE_COLUMNS, [edge("v", "u"), edge("u", "t")])
    assert nodes(walks, "x") == {"y": 1, "w": 2, "v": 3, "u": 4, "t": 5} and loads.count == 6
    store.command(f"TRUNCATE TABLE {db}")
    assert nodes(walks, "x") == {} and loads.count == 7


def test_a_processes_first_walk_is_one_query_and_the_next_ones_the_index(
    owned: tuple[Store, IndexWalks, Loads],
) -> None:
    store, _, _ = owned
    store.insert("lineage_edges", EDGE_COLUMNS, [edge("x", "y")])
    provenance, walks, loads = Provenance(store), store.walks, Loads(store)
    assert isinstance(walks, IndexWalks)
    walks.table = loads
    assert (
        provenance.downstream("x") == provenance.downstream("x") == [("y", 1, "derived_from", "x")]
    )
    assert loads.count == 1


OWNER = """
import sys, uuid
from datetime import UTC, datetime, timedelta
from auditline.settings import ClickHouseSettings
from auditline.sinks import walks as walks_module
from auditline.sinks.migrate import migrate
from auditline.sinks.rows import EDGE_COLUMNS
from auditline.sinks.store import connect

settings = ClickHouseSettings(dsn=sys.argv[1], database="walks")
store = connect(settings)
migrate(store)

def edge(src, dst):
    return (src, dst, "derived_from", datetime(2026, 1, 5, tzinfo=UTC), None, uuid.uuid4(), {})

store.insert("lineage_edges", EDGE_COLUMNS, [edge("a", "b")])
print("ready", flush=True)
for line in sys.stdin:
    verb, src, dst = line.split()
    if verb == "insert":
        store.insert("lineage_edges", EDGE_COLUMNS, [edge(src, dst)])
    elif verb == "second":  # a second connection in the owner: the same engine
        other = connect(settings)
        other.insert("lineage_edges", EDGE_COLUMNS, [edge(src, dst)])
        other.close()
    else:
        store.command(f"ALTER TABLE walks.lineage_edges DELETE WHERE src = '{src}'",
                      mutations_sync=2)
    print("done", flush=True)
store.close()
"""


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], str]]:
    dsn = f"chdb://{tmp_path_factory.mktemp('walks') / 'store'}"
    proc = _start(OWNER, dsn)
    yield proc, dsn
    _stop(proc)


def tell(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "done"


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTTP requests this process sends (to the owner)."""
    sent: list[str] = []
    request = http.client.HTTPConnection.request

    def counted(
        self: http.client.HTTPConnection, method: str, url: str, *args: Any, **kw: Any
    ) -> None:
        sent.append(f"{method} {url.split('?', maxsplit=1)[0]}")
        request(self, method, url, *args, **kw)

    monkeypatch.setattr(http.client.HTTPConnection, "request", counted)
    return sent


def test_another_process_walks_in_one_request_answered_from_the_owners_index(
    owner: tuple[subprocess.Popen[str], str], requests: list[str]
) -> None:
    proc, dsn = owner
    reader = connect(ClickHouseSettings(dsn=dsn, database="walks"))
    try:
        assert reader.via_owner and isinstance(reader.walks, OwnerWalks)
        provenance = Provenance(reader)
        reader.client.query = _refused  # no SQL through the owner: its index answers
        sent = len(requests)
        assert [tuple(h) for h in provenance.downstream("a")] == [("b", 1, "derived_from", "a")]
        assert requests[sent:] == ["POST /lineage/walk"]
        tell(proc, "insert b c")  # the owner's index has been built: it merges this in
        tell(proc, "second c d")
        assert provenance.path("a", "d") == ["a", "b", "c", "d"]
        assert [h.node for h in provenance.upstream("d", depth=2)] == ["c", "b"]
        tell(proc, "delete b -")  # any other write: the owner loads its index again
        assert [h.node for h in provenance.downstream("a")] == ["b"]
        assert requests[sent:] == ["POST /lineage/walk"] * 4
    finally:
        reader.close()


def test_the_owner_refuses_walks_without_its_token_or_of_no_database(
    owner: tuple[subprocess.Popen[str], str],
) -> None:
    reader = connect(ClickHouseSettings(dsn=owner[1], database="walks"))
    try:
        assert isinstance(reader.walks, OwnerWalks)
        wrong = OwnerWalks(reader, reader.walks.port, "wrong")
        with pytest.raises(SinkError, match=r"refused: .*owner's token"):
            wrong.walk("a", upstream=False, depth=1, as_of=T0)
        missing = connect(ClickHouseSettings(dsn=owner[1], database="nowhere"))
        with pytest.raises(SinkError, match=r"refused: .*nowhere"):
            Provenance(missing).downstream("a")
        missing.close()
    finally:
        reader.close()


def _refused(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a walk through the owner sent SQL")
