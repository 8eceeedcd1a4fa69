"""How a store answers a lineage walk: in one step, never one query per level.

Every store has one ``Walks``, chosen by ``store.connect`` for where the data is:

- ``IndexWalks``, an engine opened in this process (``chdb://``, the owner of a folder store): the
  database's in-memory ``LineageIndex`` (``lineage.py``). A process's first walk of a database is
  one recursive query (a one-shot command needs no index); the next loads the index (a read of
  ``lineage_edges``, one to two seconds a million edges); later ones do not touch the engine.
  It is kept exact: rows this process inserts into ``lineage_edges`` through ``Store.insert`` (any
  store of this engine: the sink's, a second ``connect()``) are merged into it before the next
  walk, and any other write through a store of this engine (``command``, or a query that is not a
  read: ALTER, DELETE, TRUNCATE, DROP, OPTIMIZE, INSERT … SELECT, migrations) makes the next walk
  load it again; a write that cannot be read as edge rows, or a failed insert, does the same. The
  owner's endpoint runs only reads. The process's index goes with its last store of the engine.
- ``OwnerWalks``, a process reading an embedded store through its owner: one request to the
  owner's endpoint (``POST /lineage/walk``), answered from the owner's index.
- ``SqlWalks``, a ClickHouse server: one recursive query (``WITH RECURSIVE``, ClickHouse 24.4 or
  later), a level per recursion step inside the server.

All give the same steps: nodes within ``depth`` hops of ``start`` over the edges open at
``as_of``, nearest first, each with its level, edge type and the neighbour it came from (of the
edges reaching a new node at a level, the sorted-first (via, node, type)).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from auditline.errors import SinkError, StoreUnavailableError

if TYPE_CHECKING:
    from .lineage import EdgeBatch, LineageIndex, Step
    from .store import Store

EDGES = "lineage_edges"
READ = re.compile(r"\s*\(*\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.IGNORECASE)
ROUTE = "/lineage/walk"
PENDING_MAX = 200_000  # inserted rows kept for the next walk; beyond, it loads the index again
OWNER_TIMEOUT_S = 300.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)

LOAD = (
    "SELECT src, dst, toString(edge_type) AS kind, toUnixTimestamp64Milli(valid_from) AS since, "
    "valid_to IS NOT NULL AS closes FROM {db}.lineage_edges "
    "ORDER BY src, dst, edge_type, valid_from, closes"  # the index's order: its sorts find it so
)
# One statement: a recursion step per level inside the engine. Each step reads the edges of the
# previous level's nodes by primary key (lineage_edges by source, lineage_edges_by_dst by
# destination) and keeps those open at as_of; a node's first level and its sorted-first
# (via, type) there make its step.
WALK = """
WITH RECURSIVE walk AS (
    SELECT toUInt32(0) AS level, '' AS via, {{start:String}} AS node, '' AS kind
    UNION ALL
    SELECT toUInt32(last.level + 1), {near}, {far}, toString(edge_type)
    FROM {db}.{table}, (SELECT max(level) AS level FROM walk) AS last
    WHERE last.level < {{depth:UInt32}} AND {near} IN (SELECT node FROM walk)
      AND valid_from <= {{as_of:DateTime64(3, 'UTC')}}
    GROUP BY last.level, {near}, {far}, edge_type
    HAVING argMax(isNull(valid_to), (valid_from, isNotNull(valid_to)))
)
SELECT node, best.1, best.3, best.2 FROM (
    SELECT node, min((level, via, kind)) AS best FROM walk
    WHERE level > 0 AND node != {{start:String}} GROUP BY node
) ORDER BY best.1, best.2, node, best.3
"""


class Walks(Protocol):
    """A store's lineage walks, and what it must hear of the store's writes to stay exact."""

    def walk(self, start: str, *, upstream: bool, depth: int, as_of: datetime) -> list[Step]: ...

    def inserting(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> AbstractContextManager[object]:
        """Around the insert of ``rows`` into ``table`` of the store's database."""

    def ran(self, sql: str) -> None:
        """``sql`` ran (or failed part-way): unless it only reads, it may have written anywhere."""

    def close(self) -> None: ...


class _Unindexed:
    """Walks answered where the data is: they read the store itself, so nothing goes stale."""

    def inserting(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> AbstractContextManager[object]:
        return nullcontext()

    def ran(self, sql: str) -> None:
        pass

    def close(self) -> None:
        pass


class SqlWalks(_Unindexed):
    """One recursive query on the store's engine."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def walk(self, start: str, *, upstream: bool, depth: int, as_of: datetime) -> list[Step]:
        near, far = ("dst", "src") if upstream else ("src", "dst")
        table = "lineage_edges_by_dst" if upstream else EDGES
        sql = WALK.format(db=f"`{self.store.database}`", table=table, near=near, far=far)
        _, rows = self.store.rows(sql, {"start": start, "depth": depth, "as_of": as_of})
        return [(str(node), int(level), str(kind), str(via)) for node, level, kind, via in rows]


class OwnerWalks(_Unindexed):
    """One request to the owner's endpoint, answered from the owner's index."""

    def __init__(self, store: Store, port: int, token: str) -> None:
        self.store, self.port, self.token = store, port, token

    def walk(self, start: str, *, upstream: bool, depth: int, as_of: datetime) -> list[Step]:
        body = json.dumps({"database": self.store.database, "start": start, "upstream": upstream,
                           "depth": depth, "as_of": as_ms(as_of)})  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=OWNER_TIMEOUT_S)
        try:
            headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
            conn.request("POST", ROUTE, body.encode(), headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise StoreUnavailableError(
                f"the store's owner (pid {self.store.owner_pid}) did not answer a lineage walk: "
                f"{exc or type(exc).__name__}"
            ) from exc
        finally:
            conn.close()
        if response.status != 200:
            reason = payload.decode(errors="replace").strip().splitlines() or ["no reason given"]
            raise SinkError(f"the store's owner (pid {self.store.owner_pid}) refused: {reason[0]}")
        return list(map(tuple, json.loads(payload)["steps"]))  # [node, depth, type, via] each


class IndexWalks:
    """Walks of one database of an engine opened in this process, from the engine's indexes.

    ``table`` runs a query and returns a pyarrow table; ``first`` (when given) answers the
    process's first walk of the database; ``release`` is called on close.
    """

    def __init__(
        self,
        indexes: EngineIndexes,
        database: str,
        table: Callable[[str], Any],
        first: SqlWalks | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.indexes, self.database, self.table = indexes, database, table
        self.first, self._release = first, release

    def walk(self, start: str, *, upstream: bool, depth: int, as_of: datetime) -> list[Step]:
        if self.first is not None and self.indexes.first_walk(self.database):
            return self.first.walk(start, upstream=upstream, depth=depth, as_of=as_of)
        index = self.indexes.index(self.database, self.load)
        return index.walk(start, upstream=upstream, depth=depth, as_of=as_ms(as_of))

    def load(self) -> LineageIndex:
        from .lineage import LineageIndex, release_unused

        index = LineageIndex.from_table(self.table(LOAD.format(db=f"`{self.database}`")))
        release_unused()  # the read's Arrow buffers, gone with the table
        return index

    def inserting(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> AbstractContextManager[object]:
        if table != EDGES:
            return nullcontext()
        return self.indexes.inserting(self.database, columns, rows)

    def ran(self, sql: str) -> None:
        if not READ.match(sql):
            self.indexes.changed()

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


@dataclass
class _Kept:
    index: LineageIndex | None = None
    writes: int = -1  # the engine's write count the index reflects
    pending: list[EdgeBatch] = field(default_factory=list)
    pending_rows: int = 0
    building: threading.Lock = field(default_factory=threading.Lock)


class EngineIndexes:
    """The lineage indexes of one engine in this process, a database each, kept exact.

    Every write other than an understood insert into ``lineage_edges`` counts as a write to every
    database of the engine; an index that has not seen the latest is loaded again. Inserted rows
    wait for the next walk of their database, which merges them in (rows an index already holds
    change nothing, so a load that raced an insert loses nothing). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writes = 0
        self._kept: dict[str, _Kept] = {}
        self._walked: set[str] = set()

    def first_walk(self, database: str) -> bool:
        with self._lock:
            first = database not in self._walked
            self._walked.add(database)
            return first

    def changed(self) -> None:
        with self._lock:
            self._changed()

    def _changed(self) -> None:
        self._writes += 1
        for kept in self._kept.values():  # a load reads what of them the write left
            kept.pending, kept.pending_rows = [], 0

    @contextmanager
    def inserting(
        self, database: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Iterator[None]:
        """Around an insert into ``lineage_edges``: its rows wait for the next walk, unless it
        failed (some rows may be stored), another write finished meanwhile (it may have come
        before or after these rows), or they are not as the index reads them."""
        with self._lock:
            before = self._writes
        try:
            yield
        except BaseException:
            self.changed()
            raise
        if database not in self._kept:
            return  # nothing kept: a load will read these rows
        batch = edge_batch(columns, rows)
        with self._lock:
            kept = self._kept[database]
            if (
                batch is None
                or self._writes != before
                or kept.pending_rows + len(rows) > PENDING_MAX
            ):
                self._changed()
            else:
                kept.pending.append(batch)
                kept.pending_rows += len(rows)

    def index(self, database: str, load: Callable[[], LineageIndex]) -> LineageIndex:
        """The database's index as of every write that finished before this call."""
        with self._lock:
            kept = self._kept.setdefault(database, _Kept())
            if kept.index is not None and kept.writes == self._writes and not kept.pending:
                return kept.index
        with kept.building:
            with self._lock:
                writes, pending = self._writes, kept.pending
                kept.pending, kept.pending_rows = [], 0
                index = kept.index if kept.writes == writes else None
            try:
                index = index if index is not None else load()
                if pending:  # one merge for every waiting insert: one sort, not one per insert
                    index = index.with_rows(_joined(pending))
            except BaseException:
                with self._lock:  # this database only: its pending rows are gone, load it next
                    self._kept.pop(database, None)
                raise
            with self._lock:
                kept.index, kept.writes = index, writes
            return index


def _joined(batches: Sequence[EdgeBatch]) -> EdgeBatch:
    """Waiting inserts as one batch, in insert order."""
    if len(batches) == 1:
        return batches[0]
    from .lineage import EdgeBatch

    return EdgeBatch(
        [v for b in batches for v in b.src], [v for b in batches for v in b.dst],
        [v for b in batches for v in b.kind], [v for b in batches for v in b.since],
        [v for b in batches for v in b.closes],
    )  # fmt: skip


def edge_batch(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> EdgeBatch | None:
    """``lineage_edges`` rows as the index reads them; None unless every value is as the sink
    writes it (strings, timezone-aware times), so that the engine stored exactly these."""
    from .lineage import EdgeBatch

    try:
        at = [list(columns).index(c) for c in ("src", "dst", "edge_type", "valid_from", "valid_to")]
        src, dst, kind, since, until = ([row[i] for row in rows] for i in at)
        if not all(type(v) is str for v in (*src, *dst, *kind)):
            return None
        if not all(type(t) is datetime and t.utcoffset() is not None for t in since):
            return None
        return EdgeBatch(src, dst, kind, [as_ms(t) for t in since], [t is not None for t in until])
    except (ValueError, IndexError, TypeError, OverflowError):
        return None


def as_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down as the engine stores DateTime64(3); a naive
    time is UTC."""
    return ((moment if moment.tzinfo else moment.replace(tzinfo=UTC)) - EPOCH) // MS


def indexed(path: str) -> Callable[[Store], Walks]:
    """Walks of a store whose engine at ``path`` is open in this process."""

    def walks(store: Store) -> Walks:
        indexes, release = engine_indexes(path)
        return IndexWalks(indexes, store.database, store.arrow, SqlWalks(store), release)

    return walks


def through_owner(port: int, token: str) -> Callable[[Store], Walks]:
    """Walks of a store read through its owner's endpoint."""
    return lambda store: OwnerWalks(store, port, token)


_lock = threading.Lock()
_engines: dict[str, tuple[EngineIndexes, int]] = {}  # per process, as chDB's engine is


def engine_indexes(path: str) -> tuple[EngineIndexes, Callable[[], None]]:
    """The indexes of the engine at ``path`` in this process, and the call that lets them go:
    they are dropped with the last user (the engine may be closed and changed elsewhere)."""
    with _lock:
        indexes, users = _engines.get(path, (EngineIndexes(), 0))
        _engines[path] = (indexes, users + 1)
    released = threading.Event()

    def release() -> None:
        with _lock:
            if released.is_set():
                return
            released.set()
            indexes, users = _engines[path]
            if users > 1:
                _engines[path] = (indexes, users - 1)
            else:
                del _engines[path]

    return indexes, release
