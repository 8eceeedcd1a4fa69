"""Lineage answers from the embedded engine equal an independent BFS over the known graph."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

import pytest
from auditline.sinks.queries import Provenance
from auditline.sinks.store import Store

from tests.unit.sinks.platform import T0

M = lambda minute: T0 + timedelta(minutes=minute)  # noqa: E731
# (src, dst, opened, closed): written down from the platform's story, not from rows.py
EDGES = [
    ("raw", "raw-us", M(5), None),
    ("raw-us", "features", M(10), None),
    ("features", "run:r1", M(20), None),
    ("run:r1", "model:churn:1", M(20), None),
    ("model:churn:1", "deployment:dep-a", M(30), M(60)),
    ("features", "run:r2", M(40), None),
    ("other", "run:r2", M(40), None),
    ("run:r2", "model:churn:2", M(40), None),
    ("model:churn:2", "deployment:dep-b", M(45), None),
    ("raw", "raw-sg", M(50), None),
]
TIMES = [None, M(15), M(35), M(55), M(65)]
NODES = [
    "raw",
    "raw-us",
    "features",
    "other",
    "model:churn:1",
    "model:churn:2",
    "deployment:dep-a",
    "deployment:dep-b",
    "run:r2",
]


def bfs(start: str, upstream: bool, depth: int, as_of: datetime | None) -> dict[str, int]:
    open_edges = [(s, d) for s, d, opened, closed in EDGES
                  if as_of is None or (opened <= as_of and (closed is None or closed > as_of))]  # fmt: skip
    if as_of is None:
        open_edges = [(s, d) for s, d, _, closed in EDGES if closed is None]
    found: dict[str, int] = {}
    queue = deque([(start, 0)])
    seen = {start}
    while queue:
        node, level = queue.popleft()
        if level == depth:
            continue
        for s, d in open_edges:
            nxt = s if upstream and d == node else d if not upstream and s == node else None
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                found[nxt] = level + 1
                queue.append((nxt, level + 1))
    return found


@pytest.mark.parametrize("as_of", TIMES, ids=lambda t: "now" if t is None else t.strftime("%H:%M"))
@pytest.mark.parametrize("depth", [1, 2, 10])
def test_upstream_and_downstream_match_an_independent_bfs(
    store: Store, as_of: datetime | None, depth: int
) -> None:
    provenance = Provenance(store)
    for node in NODES:
        for upstream in (True, False):
            got = {
                h.node: h.depth
                for h in provenance.walk(node, upstream=upstream, depth=depth, as_of=as_of)
            }
            assert got == bfs(node, upstream, depth, as_of), (node, upstream, depth, as_of)


def test_as_of_before_an_edge_existed(store: Store) -> None:
    provenance = Provenance(store)
    assert "raw-sg" not in {h.node for h in provenance.downstream("raw", as_of=M(49))}
    assert "raw-sg" in {h.node for h in provenance.downstream("raw", as_of=M(51))}
    assert provenance.downstream("raw", as_of=M(1)) == []
    assert {h.node for h in provenance.downstream("model:churn:1", as_of=M(59))} == {
        "deployment:dep-a"
    }
    assert provenance.downstream("model:churn:1", as_of=M(61)) == []  # retired


def test_path_is_a_shortest_route(store: Store) -> None:
    provenance = Provenance(store)
    assert provenance.path("raw", "deployment:dep-b") == [
        "raw", "raw-us", "features", "run:r2", "model:churn:2", "deployment:dep-b"]  # fmt: skip
    assert provenance.path("other", "deployment:dep-a") is None
    assert provenance.path("raw", "model:churn:1", as_of=M(15)) is None
    assert (
        len(provenance.path("raw", "model:churn:1") or []) - 1
        == bfs("raw", False, 50, None)["model:churn:1"]
    )


def test_predictions_derived_from_a_dataset(store: Store) -> None:
    _, rows = Provenance(store).predictions_derived_from("raw")
    got = {(r[0], r[1], r[2]): r[4] for r in rows}
    assert got == {("churn", "1", "US"): 2, ("churn", "2", "SG"): 1}
    _, other = Provenance(store).predictions_derived_from("other")
    assert {(r[0], r[1]) for r in other} == {("churn", "2")}
    assert Provenance(store).predictions_derived_from("nothing")[1] == []


def test_transfers_of_personal_data_from_the_eea_to_non_adequate_countries(store: Store) -> None:
    columns, rows = Provenance(store).transfers(
        classification="personal", source="EEA", destination="!adequate"
    )
    assert [(r[columns.index("asset_id")], r[columns.index("destination_country")]) for r in rows] == [
        ("raw", "US"), ("raw", "SG")]  # fmt: skip
    _, none = Provenance(store).transfers(
        classification="personal", source="EEA", destination="adequate"
    )
    assert none == []
    _, later = Provenance(store).transfers(since=M(30))
    assert len(later) == 1
