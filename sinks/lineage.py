"""The lineage graph in memory: both directions as CSR arrays, each edge with its open interval.

Pure: numpy and pyarrow over plain inputs. ``walks.py`` decides when an index is loaded, brought
up to date and thrown away.

Rows are ``lineage_edges`` rows cut to what a walk needs: source, destination, edge type,
``valid_from`` in ms since the epoch, and whether the row closes the edge (``valid_to`` set). An
edge (src, dst, type) is open at T when its latest row with ``valid_from <= T`` does not close it;
of two rows at the same instant the closing one is the later. So each opening row holds the edge
open from its ``valid_from`` until the next row's: an edge's intervals, and a walk as of T keeps
the edges whose interval holds T, one vectorised mask per level.

Node ids are ranks in the sorted node names (Python's order, the engine's byte order for UTF-8)
and type ids ranks in the sorted type names; each node's edges are sorted by (far end, type).
Walking the frontier in id order therefore meets a level's edges in (via, node, type) order, and
the first edge reaching a new node is the one the walk keeps: no string is compared in a walk.
Small frontiers are walked in Python, large ones with numpy; the answers are the same.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
from numpy.typing import NDArray

Step = tuple[str, int, str, str]  # node, depth, edge type, the neighbour it was reached from
NEVER = np.iinfo(np.int64).max
SMALL = 48  # frontiers below this many nodes are walked in Python, larger ones with numpy

Ids = NDArray[np.int32]
Times = NDArray[np.int64]


@dataclass(frozen=True)
class EdgeBatch:
    """Edge rows as Python values (``valid_from`` in ms since the epoch)."""

    src: Sequence[str]
    dst: Sequence[str]
    kind: Sequence[str]
    since: Sequence[int]
    closes: Sequence[bool]


@dataclass(frozen=True)
class Rows:
    """Edge rows as columns: node and type ids, ``valid_from`` in ms, closing flags."""

    src: Ids
    dst: Ids
    kind: NDArray[np.uint16]
    since: Times
    closes: NDArray[np.bool_]


@dataclass(frozen=True)
class Adjacency:
    """The open intervals of edges grouped by one end: node v's are ``[offsets[v], offsets[v+1])``,
    sorted by (far end, type)."""

    offsets: NDArray[np.int64]
    far: Ids
    kind: NDArray[np.uint16]
    since: Times
    until: Times


class LineageIndex:
    """An immutable snapshot of the edges of one database; ``with_rows`` makes the next one."""

    def __init__(self, names: list[str], kinds: list[str], rows: Rows) -> None:
        self.names, self.kinds = names, kinds
        self.rows = _sorted(rows)
        self.down, self.up = _adjacencies(self.rows, len(names))

    @classmethod
    def from_table(cls, table: Any) -> LineageIndex:
        """From a pyarrow table with columns src, dst, kind (strings), since (ms), closes."""
        src, dst = (table.column(name).combine_chunks() for name in ("src", "dst"))
        names, ids = _ranked(pa.concat_arrays([src, dst]))
        kinds, kind = _ranked(table.column("kind").combine_chunks())
        rows = Rows(
            ids[: len(src)], ids[len(src) :], kind.astype(np.uint16),
            table.column("since").to_numpy().astype(np.int64),
            table.column("closes").to_numpy().astype(np.bool_),
        )  # fmt: skip
        return cls(names, kinds, rows)

    def with_rows(self, batch: EdgeBatch) -> LineageIndex:
        """This index with ``batch`` added (rows already held change nothing)."""
        names, moved = _merged(self.names, [*batch.src, *batch.dst])
        kinds, kinds_moved = _merged(self.kinds, batch.kind)
        old = self.rows
        if moved is not None:
            old = replace(old, src=moved[old.src], dst=moved[old.dst])
        if kinds_moved is not None:
            old = replace(old, kind=kinds_moved[old.kind].astype(np.uint16))
        new = Rows(
            _ids(names, batch.src), _ids(names, batch.dst),
            _ids(kinds, batch.kind).astype(np.uint16),
            np.asarray(batch.since, np.int64), np.asarray(batch.closes, np.bool_),
        )  # fmt: skip
        both = Rows(*map(np.concatenate, zip(_columns(old), _columns(new), strict=True)))
        return LineageIndex(names, kinds, both)

    def walk(self, start: str, *, upstream: bool, depth: int, as_of: int) -> list[Step]:
        """Nodes within ``depth`` hops of ``start`` over the edges open at ``as_of`` (ms), nearest
        first; a node's step is its sorted-first (via, node, type) edge at its level."""
        at = bisect_left(self.names, start)
        if at == len(self.names) or self.names[at] != start:
            return []
        return _Walk(self, self.up if upstream else self.down, as_of).run(at, depth)

    def __len__(self) -> int:
        return len(self.rows.src)

    def nbytes(self) -> int:
        """Memory held: the arrays, the name list and its strings."""
        arrays = [*_columns(self.rows)]
        for edges in (self.down, self.up):
            arrays += [edges.offsets, edges.far, edges.kind, edges.since, edges.until]
        names = sys.getsizeof(self.names) + sum(map(sys.getsizeof, self.names))
        return int(sum(a.nbytes for a in arrays)) + names


class _Walk:
    """One breadth-first walk: levels in Python while the frontier is small, then numpy."""

    def __init__(self, index: LineageIndex, edges: Adjacency, as_of: int) -> None:
        self.names, self.kinds, self.edges, self.as_of = index.names, index.kinds, edges, as_of
        self.steps: list[Step] = []

    def run(self, start: int, depth: int, small: int = SMALL) -> list[Step]:
        seen, frontier, level = {start}, [start], 1
        while frontier and level <= depth and len(frontier) < small:
            frontier, level = self._few(sorted(frontier), seen, level), level + 1
        if frontier and level <= depth:
            marks = np.zeros(len(self.names), np.bool_)
            marks[list(seen)] = True
            front = np.asarray(frontier, np.int64)
            while len(front) and level <= depth:
                front, level = self._many(np.sort(front), marks, level), level + 1
        return self.steps

    def _few(self, frontier: list[int], seen: set[int], level: int) -> list[int]:
        edges, as_of, names, kinds = self.edges, self.as_of, self.names, self.kinds
        found = []
        for via in frontier:
            a, b = int(edges.offsets[via]), int(edges.offsets[via + 1])
            for node, kind, since, until in zip(
                edges.far[a:b].tolist(), edges.kind[a:b].tolist(),
                edges.since[a:b].tolist(), edges.until[a:b].tolist(), strict=True,
            ):  # fmt: skip
                if since <= as_of < until and node not in seen:
                    seen.add(node)
                    found.append(node)
                    self.steps.append((names[node], level, kinds[kind], names[via]))
        return found

    def _many(self, frontier: NDArray[np.int64], seen: NDArray[np.bool_], level: int) -> Any:
        edges = self.edges
        first = edges.offsets[frontier]
        counts = edges.offsets[frontier + 1] - first
        at = np.arange(int(counts.sum())) + np.repeat(first - (np.cumsum(counts) - counts), counts)
        via, node = np.repeat(frontier, counts), edges.far[at]
        keep = (edges.since[at] <= self.as_of) & (edges.until[at] > self.as_of) & ~seen[node]
        at, via, node = at[keep], via[keep], node[keep]
        _, winners = np.unique(node, return_index=True)  # each node's first edge in this order
        winners.sort()
        node, via, kind = node[winners], via[winners], edges.kind[at[winners]]
        seen[node] = True
        names, kinds = self.names, self.kinds
        self.steps.extend(zip(
            [names[i] for i in node.tolist()], repeat(level),
            [kinds[k] for k in kind.tolist()], [names[i] for i in via.tolist()],
        ))  # fmt: skip
        return node


def release_unused() -> None:
    """Hand freed Arrow buffers back to the system (Arrow's allocator keeps them otherwise)."""
    pa.default_memory_pool().release_unused()


def _ranked(values: Any) -> tuple[list[str], Ids]:
    """The sorted distinct strings of a pyarrow array, and each value's rank among them."""
    encoded = pc.dictionary_encode(values)
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    names: list[str] = encoded.dictionary.take(order).to_pylist()
    return names, rank[encoded.indices.to_numpy()]


def _merged(names: list[str], more: Iterable[str]) -> tuple[list[str], Ids | None]:
    """``names`` with ``more`` added, sorted, and each old id's new id (None: none moved)."""
    new = sorted({n for n in more if not _has(names, n)})
    if not new:
        return names, None
    at = [bisect_left(names, n) for n in new]
    merged: list[str] = []
    done = 0
    for where, name in zip(at, new, strict=True):
        merged += names[done:where]
        merged.append(name)
        done = where
    merged += names[done:]
    old = np.arange(len(names))
    return merged, (old + np.searchsorted(np.asarray(at), old, side="right")).astype(np.int32)


def _has(names: list[str], name: str) -> bool:
    at = bisect_left(names, name)
    return at < len(names) and names[at] == name


def _ids(names: list[str], values: Sequence[str]) -> Ids:
    return np.asarray([bisect_left(names, v) for v in values], np.int32)


def _columns(rows: Rows) -> tuple[Any, ...]:
    return rows.src, rows.dst, rows.kind, rows.since, rows.closes


def _sorted(rows: Rows) -> Rows:
    """By (src, dst, type, valid_from), a closing row after an opening row of the same instant."""
    pair = rows.src.astype(np.int64) << 32 | rows.dst
    order = _order(pair, rows.kind, rows.since * 2 + rows.closes)
    return Rows(*(column[order] for column in _columns(rows)))


def _order(major: NDArray[np.int64], *minor: NDArray[Any]) -> NDArray[np.intp]:
    """Positions sorting by ``(major, *minor)``: one sort by ``major``, a single integer (a
    third of a lexicographic sort's time), then the rare runs of equal ``major`` whose minor keys
    are out of order (an edge's several rows, a pair's several types) sorted again."""
    order = np.argsort(major)
    major, minor = major[order], tuple(key[order] for key in minor)
    ascending = np.ones(len(major) - 1 if len(major) else 0, np.bool_)
    for key in reversed(minor):
        ascending = (key[1:] > key[:-1]) | ((key[1:] == key[:-1]) & ascending)
    tangled = major[1:][(major[1:] == major[:-1]) & ~ascending]
    if len(tangled):
        runs = np.flatnonzero(np.isin(major, tangled))
        keys = [key[runs] for key in reversed(minor)]
        order[runs] = order[runs][np.lexsort((*keys, major[runs]))]
    return order


def _adjacencies(rows: Rows, nodes: int) -> tuple[Adjacency, Adjacency]:
    """Each opening row's interval, until the next row of its edge; grouped by src, and by dst."""
    src, dst, kind, since = rows.src, rows.dst, rows.kind, rows.since
    same = (src[1:] == src[:-1]) & (dst[1:] == dst[:-1]) & (kind[1:] == kind[:-1])
    until = np.full(len(since), NEVER, np.int64)
    until[:-1][same] = since[1:][same]
    keep = ~rows.closes & (until > since)
    src, dst, kind, since, until = src[keep], dst[keep], kind[keep], since[keep], until[keep]
    down = Adjacency(_offsets(src, nodes), dst, kind, since, until)  # by (src, dst, type)
    by_dst = _order(dst.astype(np.int64) << 32 | src, kind)
    up = Adjacency(_offsets(dst[by_dst], nodes), src[by_dst], kind[by_dst], since[by_dst],
                   until[by_dst])  # fmt: skip
    return down, up


def _offsets(near: Ids, nodes: int) -> NDArray[np.int64]:
    offsets = np.zeros(nodes + 1, np.int64)
    np.cumsum(np.bincount(near, minlength=nodes), out=offsets[1:])
    return offsets
