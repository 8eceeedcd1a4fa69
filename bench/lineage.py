"""Lineage query latency on a 1M-edge graph in the embedded engine, beside in-process BFS.

Two graphs of 1,000,000 edges in 40 layers, each edge valid from a time spread over 2025:
- sparse: 25,000 nodes a layer, ~1 child per node: lineage as platforms have it (copies,
  derivations, a few inputs per model), closures of tens to hundreds of nodes;
- dense: 10,000 nodes a layer, ~2.5 children per node: closures of tens of thousands of nodes.
Queries start at random nodes of the middle layers: downstream and upstream to depth 10, and
downstream as of a random past time. The baseline walks the same graph from Python dicts in
the same process; every engine answer is checked against it. ``ratio`` = BFS p50 / engine p50
(sparse downstream).
"""

from __future__ import annotations

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
from auditline.sinks.queries import Provenance
from auditline.sinks.rows import EDGE_COLUMNS
from auditline.sinks.store import connect

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
        cases: dict[
            str, tuple[Callable[[str, datetime], Any], Callable[[str, datetime], set[str]]]
        ] = {
            "downstream": (
                lambda s, t: provenance.downstream(s, 10),
                lambda s, t: bfs(down, s, 10, None),
            ),
            "upstream": (
                lambda s, t: provenance.upstream(s, 10),
                lambda s, t: bfs(up, s, 10, None),
            ),
            "as_of": (
                lambda s, t: provenance.downstream(s, 10, as_of=t),
                lambda s, t: bfs(down, s, 10, t),
            ),
        }
        pairs = list(zip(starts, times, strict=True))
        for name, (query, baseline) in cases.items():
            for s, t in pairs:  # the engine's answers equal the BFS
                assert {h.node for h in query(s, t)} == baseline(s, t), (name, s)
            engine = [timed(lambda s=s, t=t, q=query: q(s, t)) for s, t in pairs]
            python = [timed(lambda s=s, t=t, b=baseline: b(s, t)) for s, t in pairs]
            sizes = [len(baseline(s, t)) for s, t in pairs]
            figures[f"{shape}_p50_{name}_ms"], figures[f"{shape}_p99_{name}_ms"] = quantiles(engine)
            figures[f"{shape}_bfs_p50_{name}_ms"], _ = quantiles(python)
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
