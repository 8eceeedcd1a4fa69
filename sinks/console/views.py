"""What the console shows, read from the audit store: plain JSON-able values, no web framework.

Each function is one screen's data and the console's HTTP API returns it as it is
(docs/console.md). Every read goes through ``Provenance`` (lineage walks, transfers, node ids)
or one parameterised query here; unknown ids are ``NotFoundError``, bad filters ``ConfigError``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from auditline.alerting.subscriptions import Filters
from auditline.alerting.view import AlertView
from auditline.errors import ConfigError, NotFoundError
from auditline.events import (
    DataQualityAlert,
    DriftAlert,
    Event,
    IntegrityAlert,
    PerformanceAlert,
    PolicyViolation,
)
from auditline.events.types import Classification, MechanismKind
from auditline.output import json_value

from ..evidence import evidence
from ..queries import Provenance
from ..verification import VerifyOptions, verify_log

log = logging.getLogger(__name__)
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)
MAX_NODES = 1500  # a browser draws this many nodes at ease; nearest first beyond it
MAX_DEPTH = 50
ALERT_MODELS: dict[str, type[Event]] = {
    m.__name__: m
    for m in (PolicyViolation, DriftAlert, DataQualityAlert, PerformanceAlert, IntegrityAlert)
}
HOP_OF_KIND = {"DataMovement": "movement", "TrainingRun": "training", "ModelDeployed": "serving"}


def graph(
    provenance: Provenance,
    node: str,
    *,
    direction: str = "both",
    depth: int = 10,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """The lineage around ``node``: its nodes (place, classification, kind) and the edges open at
    ``as_of`` between them, each with the violations raised on the event that made it."""
    if direction not in ("upstream", "downstream", "both"):
        raise ConfigError(f"direction {direction}: give upstream, downstream or both")
    if not 0 <= depth <= MAX_DEPTH:
        raise ConfigError(f"depth {depth}: give a depth from 0 to {MAX_DEPTH}")
    provenance.require_node(node)
    when = as_of or FAR_FUTURE
    reached: dict[str, int] = {node: 0}
    for upstream in (True, False):
        if direction != "both" and upstream != (direction == "upstream"):
            continue
        for hit in provenance.walk(node, upstream=upstream, depth=depth, as_of=when):
            reached.setdefault(hit.node, hit.depth)
    names = sorted(reached, key=lambda n: (reached[n], n))
    truncated = len(names) > MAX_NODES
    names = names[:MAX_NODES]
    nodes = _nodes(provenance, names, when)
    edges = _edges(provenance, names, when)
    _mark_violations(provenance, nodes, edges, when)
    return {
        "root": node,
        "direction": direction,
        "depth": depth,
        "as_of": json_value(as_of) if as_of else None,
        "truncated": truncated,
        "nodes": [nodes[n] | {"distance": reached[n]} for n in names],
        "edges": edges,
    }


def _nodes(provenance: Provenance, names: list[str], when: datetime) -> dict[str, dict[str, Any]]:
    """Each node's latest declaration by ``when``; a node only named by edges gets its id."""
    _, rows = provenance.store.rows(
        f"SELECT node_id, argMax(node_type, valid_from), argMax(name, valid_from), "
        f"argMaxIf(country, valid_from, country IS NOT NULL), "
        f"argMaxIf(attributes, valid_from, length(attributes) > 0), "
        f"groupArray(toString(event_id)) "
        f"FROM {provenance.db}.lineage_nodes "
        "WHERE node_id IN {n:Array(String)} AND valid_from <= {t:DateTime64(3, 'UTC')} "
        "GROUP BY node_id",
        {"n": names, "t": when},
    )
    found = {row[0]: row for row in rows}
    nodes = {}
    for name in names:
        _, kind, label, country, attributes, events = found.get(
            name, (name, _kind_of(name), name, None, {}, [])
        )
        attributes = dict(attributes or {})
        nodes[name] = {
            "id": name,
            "kind": kind,
            "label": label,
            "country": country or "",
            "classification": attributes.pop("classification", ""),
            "attributes": attributes,
            "events": sorted(set(events)),
            "violations": [],
        }
    return nodes


def _kind_of(node: str) -> str:
    prefix = node.split(":", 1)[0]
    return {"run": "run", "model": "model_version", "deployment": "deployment"}.get(
        prefix, "dataset"
    )


def _edges(provenance: Provenance, names: list[str], when: datetime) -> list[dict[str, Any]]:
    """Edges between the nodes open at ``when``: an edge's latest row by then decides, a closing
    row after an opening one of the same time (the rule of the lineage walks, ``walks.py``)."""
    _, rows = provenance.store.rows(
        f"SELECT src, dst, edge_type, 0, groupArray(toString(event_id)), "
        f"argMax(attributes, valid_from) FROM {provenance.db}.lineage_edges "
        "WHERE src IN {n:Array(String)} AND dst IN {n:Array(String)} "
        "  AND valid_from <= {t:DateTime64(3, 'UTC')} "
        "GROUP BY src, dst, edge_type "
        "HAVING argMax(isNull(valid_to), (valid_from, isNotNull(valid_to))) "
        "ORDER BY src, dst, edge_type",
        {"n": names, "t": when},
    )
    return [
        {
            "id": f"{src}|{edge_type}|{dst}",
            "source": src,
            "target": dst,
            "kind": edge_type,
            "attributes": dict(attributes or {}),
            "events": sorted(set(events)),
            "violations": [],
        }
        for src, dst, edge_type, _, events, attributes in rows
    ]


def _mark_violations(
    provenance: Provenance,
    nodes: dict[str, dict[str, Any]],
    edges: list[dict[str, Any]],
    when: datetime,
) -> None:
    """Each violation judged by ``when`` marks where the event it judged belongs: a dataset's
    declaration its node; a training run's status event the run's ``trained_on`` hops (the run
    node when it has none); a prediction the model version that made it; any other event (a
    copy, a deployment, an OpenLineage run) the hops it made."""
    made, into = _made_by(edges)
    declared = {e: n for n in nodes.values() for e in n["events"]}
    db = provenance.db
    _, rows = provenance.store.rows(
        f"SELECT v.violation_id, v.rule_id, v.decision, v.severity, v.message, "
        f"v.subject_event_id, a.kind, a.node FROM {db}.violations AS v FINAL "
        f"LEFT JOIN (SELECT toString(event_id) AS id, kind, event_time, multiIf("
        f"    kind = 'TrainingRun', concat('run:', JSONExtractString(payload, 'run_id')), "
        f"    kind IN ('Prediction', 'PredictionBatch'), "
        f"      concat('model:', ifNull(model_name, ''), ':', ifNull(model_version, '')), "
        f"    '') AS node FROM {db}.audit_log "
        "   WHERE event_id IN (SELECT toUUIDOrZero(subject_event_id) FROM "
        f"  {db}.violations)) AS a ON a.id = v.subject_event_id "
        "WHERE (v.subject_event_id IN {e:Array(String)} OR a.node IN {n:Array(String)}) "
        "  AND if(a.id = '', v.event_time, a.event_time) <= {t:DateTime64(3, 'UTC')} "
        "ORDER BY v.event_time, v.violation_id",
        {"e": sorted({*made, *declared}), "n": sorted(nodes), "t": when},
    )
    for violation_id, rule, decision, severity, message, subject, kind, place in rows:
        mark = {
            "violation_id": violation_id, "rule": rule, "decision": decision,
            "severity": severity, "message": message, "subject_event_id": subject,
        }  # fmt: skip
        marked: list[dict[str, Any]]
        if kind == "AssetDeclared":
            marked = [declared[subject]] if subject in declared else []
        elif kind == "TrainingRun":
            hops = [e for e in into.get(place, ()) if e["kind"] == "trained_on"]
            marked = hops or ([nodes[place]] if place in nodes else [])
        elif kind in ("Prediction", "PredictionBatch"):
            mark["hop"] = "prediction"
            marked = [nodes[place]] if place in nodes else []
        else:
            marked = made.get(subject) or ([declared[subject]] if subject in declared else [])
        for item in marked:
            if mark not in item["violations"]:
                item["violations"].append(mark)


def _made_by(
    edges: list[dict[str, Any]],
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The hops each event made, and the hops into each node."""
    made: dict[str, list[dict[str, Any]]] = defaultdict(list)
    into: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for edge in edges:
        into[edge["target"]].append(edge)
        for event_id in edge["events"]:
            made[event_id].append(edge)
    return made, into


def node(provenance: Provenance, node_id: str) -> dict[str, Any]:
    """One node: its declarations and every event that made an edge to or from it, in time
    order, each with the violations raised on it."""
    provenance.require_node(node_id)
    db = provenance.db
    _, rows = provenance.store.rows(
        "SELECT event_id, event_time, kind, stream, sequence, trace_id, payload "
        f"FROM {db}.audit_log WHERE event_id IN ("
        f"  SELECT event_id FROM {db}.lineage_nodes WHERE node_id = {{n:String}} "
        f"  UNION DISTINCT SELECT event_id FROM {db}.lineage_edges WHERE src = {{n:String}} "
        f"  UNION DISTINCT SELECT event_id FROM {db}.lineage_edges_by_dst WHERE dst = {{n:String}}"
        ") ORDER BY event_time, stream, sequence LIMIT 1000",
        {"n": node_id},
    )
    events = [
        {
            "event_id": str(event_id), "time": json_value(when), "kind": kind, "stream": stream,
            "sequence": sequence, "trace_id": trace_id or "", "body": _body(payload),
            "violations": [],
        }
        for event_id, when, kind, stream, sequence, trace_id, payload in rows
    ]  # fmt: skip
    by_id = {e["event_id"]: e for e in events}
    _, found = provenance.store.rows(
        f"SELECT subject_event_id, rule_id, decision, severity, message "
        f"FROM {db}.violations FINAL WHERE subject_event_id IN {{e:Array(String)}} "
        "ORDER BY event_time, violation_id",
        {"e": list(by_id)},
    )
    for subject, rule, decision, severity, message in found:
        by_id[subject]["violations"].append(
            {"rule": rule, "decision": decision, "severity": severity, "message": message}
        )
    model = node_id.removeprefix("model:") if node_id.startswith("model:") else None
    return {"id": node_id, "events": events, "evidence": model}


def _body(payload: str) -> dict[str, Any]:
    """An event's body fields (the envelope is shown as its own columns)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return {}
    body.pop("envelope", None)
    return body if isinstance(body, dict) else {}


def transfers(
    provenance: Provenance, *, classification: str | None = None, mechanism: str | None = None
) -> dict[str, Any]:
    """Data movements by origin → destination country: counts, assets, mechanisms and how many
    of them a rule denied or flagged."""
    _known("classification", classification, Classification)
    _known("mechanism", mechanism, MechanismKind)
    try:
        columns, rows = provenance.transfers(classification=classification or None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    moves = [dict(zip(columns, row, strict=True)) for row in rows]
    if mechanism:
        moves = [m for m in moves if (m["mechanism"] or "none") == mechanism]
    flagged = _flagged(provenance, [str(m["event_id"]) for m in moves])
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for move in moves:
        key = (move["source_country"] or "", move["destination_country"] or "")
        cell = cells.setdefault(
            key,
            {"from": key[0], "to": key[1], "movements": 0, "violations": 0,
             "assets": set(), "mechanisms": set(), "classifications": set()},
        )  # fmt: skip
        cell["movements"] += 1
        cell["violations"] += int(str(move["event_id"]) in flagged)
        cell["assets"].add(move["asset_id"])
        cell["mechanisms"].add(move["mechanism"] or "none")
        cell["classifications"].add(move["classification"] or "undeclared")
    return {
        "origins": sorted({k[0] for k in cells}),
        "destinations": sorted({k[1] for k in cells}),
        "cells": [json_value(cell) for _, cell in sorted(cells.items())],
        "movements": len(moves),
    }


def _known(name: str, value: str | None, kinds: type[StrEnum]) -> None:
    if value and value not in {str(k) for k in kinds}:
        choices = ", ".join(str(k) for k in kinds)
        raise ConfigError(f"{name} {value} is not one of {choices}")


def _flagged(provenance: Provenance, event_ids: list[str]) -> set[str]:
    _, rows = provenance.store.rows(
        f"SELECT DISTINCT subject_event_id FROM {provenance.db}.violations "
        "WHERE subject_event_id IN {e:Array(String)}",
        {"e": event_ids},
    )
    return {row[0] for row in rows}


MODEL_ALERTS = ("drift_alerts", "quality_alerts", "performance_alerts")


def drift_models(provenance: Provenance) -> list[dict[str, Any]]:
    """Model versions with predictions or alerts (drift, data quality, model quality), with
    their alert counts."""
    db = provenance.db
    counted = " UNION ALL ".join(
        f"SELECT model_name, model_version, count() AS alerts FROM {db}.{table} FINAL "
        "GROUP BY model_name, model_version"
        for table in MODEL_ALERTS
    )
    _, rows = provenance.store.rows(
        f"SELECT model_name, model_version, sum(alerts) FROM ({counted} "
        f"  UNION ALL SELECT model_name, model_version, 0 FROM {db}.predictions "
        f"  GROUP BY model_name, model_version"
        ") GROUP BY model_name, model_version ORDER BY model_name, model_version"
    )
    return [{"model": f"{n}:{v}", "alerts": int(a)} for n, v, a in rows]


def drift(provenance: Provenance, model_version: str) -> dict[str, Any]:
    """Drift of one model version over time: each alert's statistic per feature (the model as a
    whole under ``*``) at the windows where an alert opened or closed (the store keeps alerts,
    not every window's statistic), and the episodes per feature and level: from the window that
    opened one to the end of the window that closed it (``closed`` None: still open). Beside
    them, the version's data-quality and model-quality alerts (``quality``, ``performance``)."""
    name, _, version = model_version.removeprefix("model:").rpartition(":")
    if not name or not version:
        raise ConfigError(f"model {model_version}: give NAME:VERSION, e.g. churn:3")
    _, rows = provenance.store.rows(
        f"SELECT alert_id, state, severity, ifNull(feature, '*'), statistic, value, threshold, "
        f"window_start, window_end, training_run_id, event_time "
        f"FROM {provenance.db}.drift_alerts FINAL "
        "WHERE model_name = {n:String} AND model_version = {v:String} "
        "ORDER BY window_end, event_time, alert_id",
        {"n": name, "v": version},
    )
    quality = _alerts_of(
        provenance, "quality_alerts", name, version,
        ("feature", "check", "rate", "reference_rate", "threshold", "affected", "window_count"),
    )  # fmt: skip
    performance = _alerts_of(
        provenance, "performance_alerts", name, version,
        ("metric", "value", "baseline", "threshold", "outcomes", "coverage", "label_delay_p50_s"),
    )  # fmt: skip
    if not (rows or quality or performance) and not _has_predictions(provenance, name, version):
        raise NotFoundError(
            f"no model version {name}:{version} with predictions or alerts: "
            "open the drift list to see the versions there are"
        )
    features: dict[str, list[dict[str, Any]]] = defaultdict(list)
    episodes: list[dict[str, Any]] = []
    open_now: dict[tuple[str, str], dict[str, Any]] = {}  # (feature, level) → its open episode
    for alert_id, state, level, feature, statistic, value, threshold, start, end, run, _ in rows:
        features[feature].append(json_value({
            "alert_id": alert_id, "state": state, "severity": level, "statistic": statistic,
            "value": value, "threshold": threshold, "window_start": start, "window_end": end,
        }))  # fmt: skip
        if state == "opened" and (feature, level) not in open_now:
            episode = {
                "feature": feature, "severity": level, "statistic": statistic,
                "opened": json_value(start), "closed": None, "training_run_id": run,
            }  # fmt: skip
            open_now[(feature, level)] = episode
            episodes.append(episode)
        elif state == "closed" and (feature, level) in open_now:
            open_now.pop((feature, level))["closed"] = json_value(end)
    return {
        "model": f"{name}:{version}",
        "features": [{"feature": f, "points": points} for f, points in sorted(features.items())],
        "episodes": episodes,
        "quality": quality,
        "performance": performance,
    }


def _alerts_of(
    provenance: Provenance, table: str, name: str, version: str, fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    """A model version's alerts of ``table``, oldest window first, with ``fields``."""
    columns = ("alert_id", "state", "severity", *fields, "window_start", "window_end")
    _, rows = provenance.store.rows(
        f"SELECT {', '.join(columns)} FROM {provenance.db}.{table} FINAL "
        "WHERE model_name = {n:String} AND model_version = {v:String} "
        "ORDER BY window_end, event_time, alert_id",
        {"n": name, "v": version},
    )
    return [json_value(dict(zip(columns, row, strict=True))) for row in rows]


def _has_predictions(provenance: Provenance, name: str, version: str) -> bool:
    _, rows = provenance.store.rows(
        f"SELECT 1 FROM {provenance.db}.predictions "
        "WHERE model_name = {n:String} AND model_version = {v:String} LIMIT 1",
        {"n": name, "v": version},
    )
    return bool(rows)


def bundle(
    provenance: Provenance, model_version: str, options: VerifyOptions | None = None
) -> dict[str, Any]:
    """The evidence bundle of a model version (``auditline evidence``) as JSON values."""
    value: dict[str, Any] = json_value(evidence(provenance, model_version, options))
    return value


def streams(provenance: Provenance, options: VerifyOptions | None = None) -> dict[str, Any]:
    """Every producer stream in the store with its verification: intact, or its findings."""
    options = options or VerifyOptions()
    _, rows = provenance.store.rows(
        f"SELECT stream, any(producer_service), count(), max(sequence), max(event_time) "
        f"FROM {provenance.db}.audit_log GROUP BY stream ORDER BY stream"
    )
    report = verify_log(
        provenance.store, keys=options.keys, require_signature=options.require_signature,
        attestation_key=options.attestation_key, settle=options.settle,
    )  # fmt: skip
    findings: dict[str, list[str]] = defaultdict(list)
    for finding in report.findings:
        findings[finding.stream].append(f"{finding.kind}: seq {finding.sequence}: {finding.detail}")
    listed = {row[0] for row in rows}
    extra = [(s, "", 0, None, None) for s in sorted(set(findings) - listed)]
    return {
        "ok": report.ok,
        "events": report.events,
        "anchors": report.anchors,
        "streams": [
            json_value(
                {
                    "stream": stream,
                    "service": service,
                    "events": count,
                    "last_sequence": last,
                    "last_time": when,
                    "ok": not findings.get(stream),
                    "findings": findings.get(stream, []),
                }
            )
            for stream, service, count, last, when in [*rows, *extra]
        ],
    }


Cursor = tuple[datetime, str]
"""Where a reader of stored alerts is: the ingestion time and event id of the last row read."""


@dataclass(frozen=True)
class AlertPage:
    """Stored alerts read in one query: those matching the filters with their own cursors, the
    cursor of the last row read (filtered out or not), and how many rows were read."""

    found: list[tuple[Cursor, dict[str, Any]]]
    last: Cursor | None
    rows: int


def alerts(
    provenance: Provenance,
    filters: Filters,
    *,
    after: Cursor | None = None,
    through: Cursor | None = None,
    limit: int = 200,
) -> AlertPage:
    """Alerts stored after the cursor (oldest first, at most ``limit`` rows, up to ``through``
    when given) or, without one, the newest ``limit``; each matching ``filters`` as the
    subscriptions' JSON body. A stored alert this version cannot read is skipped and logged."""
    condition, parameters = "", {"k": list(ALERT_MODELS), "limit": limit}
    if after is not None:
        condition = "AND (ingested_at, toString(event_id)) > ({t:DateTime64(3, 'UTC')}, {e:String})"
        parameters |= {"t": after[0], "e": after[1]}
    if through is not None:
        condition += (
            " AND (ingested_at, toString(event_id)) <= ({u:DateTime64(3, 'UTC')}, {v:String})"
        )
        parameters |= {"u": through[0], "v": through[1]}
    order = "ASC" if after is not None else "DESC"
    _, rows = provenance.store.rows(
        f"SELECT ingested_at, toString(event_id), kind, payload FROM {provenance.db}.audit_log "
        f"WHERE kind IN {{k:Array(String)}} {condition} "
        f"ORDER BY ingested_at {order}, toString(event_id) {order} LIMIT {{limit:UInt32}}",
        parameters,
    )
    if after is None:
        rows.reverse()
    found = []
    for ingested, event_id, kind, payload in rows:
        try:
            view = AlertView.of(ALERT_MODELS[kind].model_validate_json(payload))
        except ValidationError as exc:
            log.warning("stored alert %s is not a readable %s, skipped: %s", event_id, kind, exc)
            continue
        if view is not None and filters.matches(view):
            found.append(((_utc(ingested), event_id), view.to_json()))
    last = (_utc(rows[-1][0]), rows[-1][1]) if rows else after
    return AlertPage(found, last, len(rows))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def meta(provenance: Provenance) -> dict[str, Any]:
    """What the filters offer: classifications, mechanisms, and the model versions and assets
    in the store (at most 1,000 each)."""
    db = provenance.db
    _, models = provenance.store.rows(
        f"SELECT DISTINCT node_id FROM {db}.lineage_nodes WHERE node_type = 'model_version' "
        "ORDER BY node_id LIMIT 1000"
    )
    _, assets = provenance.store.rows(
        f"SELECT DISTINCT node_id FROM {db}.lineage_nodes "
        "WHERE node_type NOT IN ('model_version', 'run', 'deployment') ORDER BY node_id LIMIT 1000"
    )
    return {
        "classifications": [str(c) for c in Classification if c != Classification.UNKNOWN],
        "mechanisms": [str(m) for m in MechanismKind if m != MechanismKind.UNKNOWN],
        "models": [row[0].removeprefix("model:") for row in models],
        "assets": [row[0] for row in assets],
    }
