"""Every way a walk is answered equals a plain BFS over the edge rows, as of any time.

Random graphs with several rows per edge (closings, reopenings, a closing and an opening at the
same instant, replayed rows), node names whose order differs between naive byte and code-point
readings if anyone got it wrong, every depth and time: the in-memory index (both its Python and
its numpy levels, built at once or batch by batch), the index loaded from the engine and kept up
to date through the store, and the one recursive query a server runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pyarrow as pa  # type: ignore[import-untyped]
from auditline.sinks import lineage
from auditline.sinks.lineage import EdgeBatch, LineageIndex, Step
from auditline.sinks.queries import FAR_FUTURE
from auditline.sinks.rows import EDGE_COLUMNS
from auditline.sinks.store import Store
from auditline.sinks.walks import IndexWalks, SqlWalks, as_ms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NODES = ["a", "b", "c", "d", "e", "Z", "z9", "é", "日本", "run:1"]
KINDS = ["derived_from", "moved_to", "trained_on"]
Row = tuple[str, str, str, int, bool]  # src, dst, edge type, minute, closes

rows_st = st.lists(
    st.tuples(
        st.sampled_from(NODES), st.sampled_from(NODES), st.sampled_from(KINDS),
        st.integers(0, 6), st.sampled_from([False, False, False, True]),
    ),
    max_size=40,
)  # fmt: skip
minutes = st.one_of(
    st.none(), st.integers(-1, 7),
    st.integers(0, 7).map(lambda m: m - 1 / 60e6),  # a microsecond before a row's instant
    st.integers(0, 7).map(lambda m: m + 999 / 60e6),  # the same millisecond
)  # fmt: skip
walk_st = st.tuples(st.sampled_from([*NODES, "missing"]), st.booleans(), st.integers(0, 4), minutes)
Walk = tuple[str, bool, int, float | None]


def when(minute: float | None) -> datetime:
    return FAR_FUTURE if minute is None else T0 + timedelta(minutes=minute)


def bfs(
    rows: Sequence[Row], start: str, upstream: bool, depth: int, minute: float | None
) -> list[Step]:
    """The definition: an edge is open when its latest row by then (a closing row after an
    opening one of the same instant) does not close it; per level, the sorted-first (via, node,
    type) edge reaching a new node."""
    at = when(minute)
    latest: dict[tuple[str, str, str], tuple[datetime, bool]] = {}
    for src, dst, kind, since, closes in rows:
        if when(since) <= at:
            latest[(src, dst, kind)] = max(latest.get((src, dst, kind), (when(since), closes)),
                                           (when(since), closes))  # fmt: skip
    near: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (src, dst, kind), (_, closes) in latest.items():
        if not closes:
            near[dst if upstream else src].append((src if upstream else dst, kind))
    seen, frontier, steps = {start}, [start], []
    for level in range(1, depth + 1):
        found = []
        for via, node, kind in sorted((v, n, k) for v in frontier for n, k in near[v]):
            if node not in seen:
                seen.add(node)
                found.append(node)
                steps.append((node, level, kind, via))
        frontier = found
    return steps


def batch(rows: Sequence[Row]) -> EdgeBatch:
    return EdgeBatch([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                     [as_ms(when(r[3])) for r in rows], [r[4] for r in rows])  # fmt: skip


def built(rows: Sequence[Row]) -> LineageIndex:
    edges = batch(rows)
    return LineageIndex.from_table(pa.table({
        "src": pa.array(edges.src, pa.string()), "dst": pa.array(edges.dst, pa.string()),
        "kind": pa.array(edges.kind, pa.string()), "since": pa.array(edges.since, pa.int64()),
        "closes": pa.array(edges.closes, pa.bool_()),
    }))  # fmt: skip


def walked(index: LineageIndex, walk: Walk, small: int = lineage.SMALL) -> list[Step]:
    start, upstream, depth, minute = walk
    edges = index.up if upstream else index.down
    if start not in index.names:
        return []
    run = lineage._Walk(index, edges, as_ms(when(minute)))
    return run.run(index.names.index(start), depth, small)


@settings(max_examples=300, deadline=None)
@given(rows_st, st.lists(walk_st, min_size=1, max_size=6), st.integers(0, 40))
def test_the_index_walks_as_the_definition(rows: list[Row], walks: list[Walk], cut: int) -> None:
    whole = built(rows)
    in_batches = (
        built(rows[:cut]).with_rows(batch(rows[cut : cut + 5])).with_rows(batch(rows[cut + 5 :]))
    )
    replayed = whole.with_rows(batch(rows[:cut]))  # rows it holds already change nothing
    for walk in walks:
        expected = bfs(rows, *walk)
        assert (
            whole.walk(walk[0], upstream=walk[1], depth=walk[2], as_of=as_ms(when(walk[3])))
            == expected
        )
        assert walked(whole, walk, small=0) == expected  # numpy from the first level
        assert walked(whole, walk, small=10**9) == expected  # Python all along
        assert walked(in_batches, walk, small=1) == expected
        assert walked(replayed, walk) == expected


def test_an_empty_index_and_a_missing_start_walk_nowhere() -> None:
    empty = built([])
    assert empty.walk("a", upstream=False, depth=5, as_of=0) == [] and len(empty) == 0
    grown = empty.with_rows(batch([("a", "b", "moved_to", 0, False)]))
    assert grown.walk("a", upstream=False, depth=5, as_of=as_ms(FAR_FUTURE)) == [
        ("b", 1, "moved_to", "a")
    ]
    assert grown.walk("b", upstream=True, depth=0, as_of=as_ms(FAR_FUTURE)) == []
    assert grown.walk("x", upstream=True, depth=5, as_of=as_ms(FAR_FUTURE)) == []


def stored(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    return [(src, dst, kind, when(minute), when(minute) if closes else None, uuid4(), {})
            for src, dst, kind, minute, closes in rows]  # fmt: skip


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows_st, rows_st, st.lists(walk_st, min_size=1, max_size=4))
def test_the_engines_answers_equal_the_definition(
    empty: Store, first: list[Row], then: list[Row], walks: list[Walk]
) -> None:
    """Loaded from the engine, then kept up to date by the store's inserts; and the recursive
    query a ClickHouse server answers with, on the same engine."""
    store, db = empty, empty.database
    store.command(f"TRUNCATE TABLE `{db}`.lineage_edges")  # a write: the index loads again
    store.command(f"TRUNCATE TABLE `{db}`.lineage_edges_by_dst")
    assert isinstance(store.walks, IndexWalks)
    index = IndexWalks(store.walks.indexes, db, store.arrow)  # no first walk by query
    recursive = SqlWalks(store)
    store.insert("lineage_edges", EDGE_COLUMNS, stored(first))
    for rows in (first, first + then):
        for start, upstream, depth, minute in walks:
            expected = bfs(rows, start, upstream, depth, minute)
            for walks_by in (index, recursive):
                got = walks_by.walk(start, upstream=upstream, depth=depth, as_of=when(minute))
                assert got == expected, (type(walks_by).__name__, start, upstream, depth, minute)
        store.insert("lineage_edges", EDGE_COLUMNS, stored(then))  # merged before the next walk
