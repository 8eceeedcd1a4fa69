"""Lineage query latency on a 1M-edge graph in the embedded engine, beside in-process BFS.

Two graphs of 1,000,000 edges in 40 layers, each edge valid from a time spread over 2025:
- sparse: 25,000 nodes a layer, ~1 child per node: lineage as platforms have it (copies,
  derivations, a few inputs per model), closures of tens to hundreds of nodes;
- dense: 10,000 nodes a layer, ~2.5 children per node: closures of tens of thousands of nodes.
Queries start at random nodes of the middle layers: downstream and upstream to depth 10, and
downstream as of a random past time. The baseline walks the same graph from Python dicts in
the same process; every engine answer is checked against it. ``ratio`` = BFS p50 / engine p50
(sparse downstream).

The process owns the engine, so its walks come from the in-memory lineage index: its first walk
is one recursive query (``first_walk_ms``), the second loads the index (``index_load_s``, with
``index_mb`` of memory). ``cpu_ms`` is the process's CPU time per walk (``time.process_time``).
``sql_p50`` is the one recursive query a ClickHouse server answers a walk with (``SqlWalks``),
run here on the embedded engine and checked against the BFS too. Garbage is collected before
each timed loop: a full collection of the setup's millions of Python objects (the graph and the
baseline's dicts) would otherwise land in whichever walk comes next (1.1 s, once).
"""

from __future__ import annotations

import gc
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from _report import report
from auditline.sinks.migrate import migrate
from auditline.sinks.queries import FAR_FUTURE, Provenance
from auditline.sinks.rows import EDGE_COLUMNS
from auditline.sinks.store import connect
from auditline.sinks.walks import SqlWalks

from auditline.settings import ClickHouseSettings

LAYERS, EDGES = 40, 1_000_000
SHAPES = {"sparse": 25_000, "dense": 10_000}
QUERIES = 60
START = datetime(2025, 1, 1, tzinfo=UTC)
rng = random.Random(42)


def graph(width: int) -> list[tuple[Any, ...]]:
    edges: list[tuple[Any, ...]] = []
    seen: set[tuple[str, str]] = set()
    while len(edges) < EDGES:
        layer = rng.randrange(LAYERS - 1)
        src, dst = f"n{layer}-{rng.randrange(width)}", f"n{layer + 1}-{rng.randrange(width)}"
        if (src, dst) in seen:
            continue
        seen.add((src, dst))
        valid_from = START + timedelta(seconds=rng.randrange(365 * 86400))
        edges.append((src, dst, "derived_from", valid_from, None, UUID(int=len(edges)), {}))
    return edges


def bfs(
    adjacency: dict[str, list[tuple[str, datetime]]], start: str, depth: int, as_of: datetime | None
) -> set[str]:
    seen, frontier = {start}, [start]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            for other, since in adjacency.get(node, ()):
                if other not in seen and (as_of is None or since <= as_of):
                    seen.add(other)
                    nxt.append(other)
        frontier = nxt
    return seen - {start}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def quantiles(values: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(values, n=100)
    return qs[49], qs[98]


def measure(shape: str, width: int) -> dict[str, float]:
    edges = graph(width)
    down: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    up: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for src, dst, _, since, *_ in edges:
        down[src].append((dst, since))
        up[dst].append((src, since))
    with tempfile.TemporaryDirectory() as tmp:
        store = connect(ClickHouseSettings(dsn=f"chdb://{Path(tmp) / 'engine'}", database=shape))
        migrate(store)
        started = time.perf_counter()
        for i in range(0, len(edges), 200_000):
            store.insert("lineage_edges", EDGE_COLUMNS, edges[i : i + 200_000])
        store.command(f"OPTIMIZE TABLE {shape}.lineage_edges FINAL")
        store.command(f"OPTIMIZE TABLE {shape}.lineage_edges_by_dst FINAL")
        figures: dict[str, float] = {f"{shape}_load_s": time.perf_counter() - started}
        provenance = Provenance(store)
        starts = [f"n{rng.randrange(10, 25)}-{rng.randrange(width)}" for _ in range(QUERIES)]
        times = [START + timedelta(days=rng.randrange(60, 300)) for _ in range(QUERIES)]
        first = starts[0]
        figures[f"{shape}_first_walk_ms"] = timed(lambda: provenance.downstream(first, 10))
        figures[f"{shape}_index_load_s"] = timed(lambda: provenance.downstream(first, 10)) / 1000
        index = store.walks.indexes.index(shape, store.walks.load)  # the one the walks use
        figures[f"{shape}_index_mb"] = index.nbytes() / 2**20
        sql = SqlWalks(store)
        Query = Callable[[str, datetime], Any]
        cases: dict[str, tuple[Query, Query, Callable[[str, datetime], set[str]]]] = {
            "downstream": (
                lambda s, t: provenance.downstream(s, 10),
                lambda s, t: sql.walk(s, upstream=False, depth=10, as_of=FAR_FUTURE),
                lambda s, t: bfs(down, s, 10, None),
            ),
            "upstream": (
                lambda s, t: provenance.upstream(s, 10),
                lambda s, t: sql.walk(s, upstream=True, depth=10, as_of=FAR_FUTURE),
                lambda s, t: bfs(up, s, 10, None),
            ),
            "as_of": (
                lambda s, t: provenance.downstream(s, 10, as_of=t),
                lambda s, t: sql.walk(s, upstream=False, depth=10, as_of=t),
                lambda s, t: bfs(down, s, 10, t),
            ),
        }
        pairs = list(zip(starts, times, strict=True))
        for name, (query, recursive, baseline) in cases.items():
            for s, t in pairs:  # the engine's answers, the index's and the server's, equal the BFS
                assert {h.node for h in query(s, t)} == baseline(s, t), (name, s)
                assert {step[0] for step in recursive(s, t)} == baseline(s, t), (name, s)
            gc.collect()  # the setup's millions of objects: not a bill for the next walk to pay
            cpu = time.process_time()  # the process's, all threads (the engine's too)
            engine = [timed(lambda s=s, t=t, q=query: q(s, t)) for s, t in pairs]
            figures[f"{shape}_cpu_ms_{name}"] = (time.process_time() - cpu) * 1000 / len(pairs)
            python = [timed(lambda s=s, t=t, b=baseline: b(s, t)) for s, t in pairs]
            server = [timed(lambda s=s, t=t, r=recursive: r(s, t)) for s, t in pairs]
            sizes = [len(baseline(s, t)) for s, t in pairs]
            figures[f"{shape}_p50_{name}_ms"], figures[f"{shape}_p99_{name}_ms"] = quantiles(engine)
            figures[f"{shape}_bfs_p50_{name}_ms"], _ = quantiles(python)
            figures[f"{shape}_sql_p50_{name}_ms"], _ = quantiles(server)
            figures[f"{shape}_median_{name}_nodes"] = statistics.median(sizes)
        store.close()
    return figures


def main() -> None:
    figures: dict[str, float] = {}
    for shape, width in SHAPES.items():
        figures.update(measure(shape, width))
    figures["p50_ms"] = figures["sparse_p50_downstream_ms"]
    figures["ratio"] = figures["sparse_bfs_p50_downstream_ms"] / figures["sparse_p50_downstream_ms"]
    report("lineage", figures, edges=EDGES)


if __name__ == "__main__":
    main()
