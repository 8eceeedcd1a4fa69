"""Provenance queries over the audit store: parameterised SQL only (``{name:Type}`` bindings).

Graph walks are the store's (``walks.py``): from the in-memory lineage index where the engine is
in this process, one request to the owner where another process owns it, one recursive query on
a server; never a query per level.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from auditline.errors import ConfigError, NotFoundError
from auditline.jurisdictions import expand
from auditline.policy.model import Policy, load_policy
from auditline.settings import load_settings

from .rows import model_node
from .store import Store

FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)
MAX_DEPTH = 1000  # a ClickHouse server's recursive CTE evaluates at most 1,000 levels


class Hit(NamedTuple):
    """A node a walk reached (immutable; a tuple of plain values, so that a walk of thousands of
    nodes builds them fast and the garbage collector soon stops tracking them)."""

    node: str
    depth: int
    edge_type: str
    via: str  # the neighbour it was reached from


class Provenance:
    def __init__(self, store: Store, policy: Policy | None = None) -> None:
        self.policy = policy or load_policy(load_settings().policy_path)
        self.store = store
        self.db = f"`{store.database}`"

    # -- graph walks --------------------------------------------------------------------------

    def walk(
        self, start: str, *, upstream: bool, depth: int = 10, as_of: datetime | None = None
    ) -> list[Hit]:
        """Nodes reachable from ``start`` within ``depth`` hops, nearest first.

        Over the edges open at ``as_of`` (an edge's latest row by then does not close it); each
        node once, with the sorted-first (via, node, edge type) edge that reached it at its level.
        One step whatever the depth: see ``walks.py``. ``ConfigError`` for a depth outside
        0-1000 (a server's recursive query stops at 1,000 levels).
        """
        if not 0 <= depth <= MAX_DEPTH:
            raise ConfigError(f"depth {depth}: give a depth from 0 to {MAX_DEPTH}")
        steps = self.store.walks.walk(
            start, upstream=upstream, depth=depth, as_of=as_of or FAR_FUTURE
        )
        return list(map(Hit._make, steps))

    def upstream(self, node: str, depth: int = 10, as_of: datetime | None = None) -> list[Hit]:
        return self.walk(node, upstream=True, depth=depth, as_of=as_of)

    def downstream(self, node: str, depth: int = 10, as_of: datetime | None = None) -> list[Hit]:
        return self.walk(node, upstream=False, depth=depth, as_of=as_of)

    def path(
        self, a: str, b: str, depth: int = 20, as_of: datetime | None = None
    ) -> list[str] | None:
        """A shortest downstream path from ``a`` to ``b`` (inclusive), or None."""
        parents: dict[str, str] = {}
        for hit in self.walk(a, upstream=False, depth=depth, as_of=as_of):
            parents[hit.node] = hit.via
            if hit.node == b:
                route = [b]
                while route[-1] != a:
                    route.append(parents[route[-1]])
                return route[::-1]
        return [a] if a == b else None

    # -- auditor questions --------------------------------------------------------------------

    def predictions_derived_from(
        self, dataset: str, as_of: datetime | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Predictions of every model version trained (transitively) on ``dataset``, by place."""
        versions = [
            h.node
            for h in self.downstream(dataset, depth=50, as_of=as_of)
            if h.node.startswith("model:")
        ]
        pairs = [tuple(v.split(":", 2)[1:]) for v in versions]
        if not pairs:
            return [
                "model_name",
                "model_version",
                "country",
                "region",
                "predictions",
                "first",
                "last",
            ], []
        return self.store.rows(
            f"SELECT model_name, model_version, country, region, count() AS predictions, "
            f"min(event_time) AS first, max(event_time) AS last FROM {self.db}.predictions FINAL "
            "WHERE (model_name, model_version) IN {pairs:Array(Tuple(String, String))} "
            "GROUP BY model_name, model_version, country, region "
            "ORDER BY model_name, model_version, country",
            {"pairs": pairs},
        )

    def transfers(
        self,
        *,
        classification: str | None = None,
        source: str | None = None,
        destination: str | None = None,
        since: datetime | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Data movements filtered by (inherited) classification and jurisdiction specs."""
        src, src_not = expand(source, self.policy) if source else (frozenset(), True)
        dst, dst_not = expand(destination, self.policy) if destination else (frozenset(), True)
        return self.store.rows(
            f"""
            SELECT m.event_id, m.event_time, m.asset_id, m.source_country, m.destination_country,
                   coalesce(m.classification, a.cls) AS classification, m.purpose,
                   JSONExtractString(m.payload, 'mechanism', 'kind') AS mechanism
            FROM {self.db}.audit_log AS m
            LEFT JOIN (SELECT asset_id, argMax(classification, event_time) AS cls
                       FROM {self.db}.audit_log WHERE kind = 'AssetDeclared' GROUP BY asset_id) AS a
                ON a.asset_id = m.asset_id
            WHERE m.kind = 'DataMovement'
              AND m.event_time >= {{since:DateTime64(3, 'UTC')}}
              AND ({{cls:String}} = '' OR coalesce(m.classification, a.cls) = {{cls:String}})
              AND (has({{src:Array(String)}}, m.source_country) != {{src_not:Bool}})
              AND (has({{dst:Array(String)}}, m.destination_country) != {{dst_not:Bool}})
            ORDER BY m.event_time
            """,
            {
                "since": since or datetime(1970, 1, 1, tzinfo=UTC),
                "cls": classification or "",
                "src": sorted(src),
                "src_not": src_not,
                "dst": sorted(dst),
                "dst_not": dst_not,
            },
        )

    def events(self, event_ids: Iterable[Any]) -> list[dict[str, Any]]:
        """The audit-log rows (as dicts) of the given event ids, in time order."""
        columns, rows = self.store.rows(
            "SELECT event_id, event_time, kind, stream, sequence, payload "
            f"FROM {self.db}.audit_log "
            "WHERE event_id IN {ids:Array(UUID)} ORDER BY event_time",
            {"ids": list(event_ids)},
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def node_events(self, nodes: Iterable[str]) -> list[Any]:
        """Event ids that declared the given nodes or created edges between two of them."""
        names = sorted(set(nodes))
        _, rows = self.store.rows(
            f"SELECT event_id FROM {self.db}.lineage_nodes WHERE node_id IN {{n:Array(String)}} "
            f"UNION DISTINCT SELECT event_id FROM {self.db}.lineage_edges "
            "WHERE src IN {n:Array(String)} AND dst IN {n:Array(String)}",
            {"n": names},
        )
        return [row[0] for row in rows]

    def require_node(self, node: str) -> None:
        """``NotFoundError`` unless ``node`` is declared or named by an edge."""
        _, rows = self.store.rows(
            f"SELECT 1 FROM {self.db}.lineage_nodes WHERE node_id = {{n:String}} "
            f"UNION ALL SELECT 1 FROM {self.db}.lineage_edges_by_dst WHERE dst = {{n:String}} "
            f"UNION ALL SELECT 1 FROM {self.db}.lineage_edges WHERE src = {{n:String}} LIMIT 1",
            {"n": node},
        )
        if not rows:
            raise NotFoundError(
                f"no lineage node {node} in {self.store.database}: node ids are asset ids, "
                "run:ID, model:NAME:VERSION or deployment:ID"
            )

    def model_node(self, model_version: str) -> str:
        """``name:version`` or a node id → the model-version node id."""
        if model_version.startswith("model:"):
            return model_version
        name, _, version = model_version.rpartition(":")
        return model_node(name, version)
