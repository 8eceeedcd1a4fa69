"""``auditline evidence MODEL_VERSION``: everything an auditor needs about one model version.

Sources and their jurisdictions, the transfers that brought the data to training, the training
runs, where the version serves, violations and drift alerts, and the verification of every
producer stream those events belong to, as JSON, and rendered as Markdown for a report.
"""

from __future__ import annotations

import json
from typing import Any

from .queries import Provenance
from .verification import VerifyReport, verify_log


def evidence(provenance: Provenance, model_version: str) -> dict[str, Any]:
    node = provenance.model_node(model_version)
    upstream = provenance.upstream(node, depth=50)
    downstream = provenance.downstream(node, depth=2)
    lineage_nodes = [node, *(h.node for h in upstream), *(h.node for h in downstream)]
    records = provenance.events(provenance.node_events(lineage_nodes))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in records:
        by_kind.setdefault(row["kind"], []).append(json.loads(row["payload"]))
    name, version = node.split(":", 2)[1:]
    db = provenance.db
    _, violations = provenance.store.rows(
        f"SELECT rule_id, severity, decision, message, subject_event_id FROM {db}.violations FINAL "
        "WHERE subject_event_id IN {ids:Array(String)}",
        {"ids": [str(r["event_id"]) for r in records]},
    )
    _, drift = provenance.store.rows(
        f"SELECT state, severity, feature, statistic, value, window_start, window_end "
        f"FROM {db}.drift_alerts FINAL "
        "WHERE model_name = {m:String} AND model_version = {v:String}",
        {"m": name, "v": version},
    )
    streams = sorted({row["stream"] for row in records})
    report = verify_log(provenance.store)
    chain = [_stream_check(report, stream) for stream in streams]
    return {
        "model_version": node,
        "sources": [_asset(a) for a in by_kind.get("AssetDeclared", [])],
        "transfers": [_transfer(m) for m in by_kind.get("DataMovement", [])],
        "training": [_training(t) for t in by_kind.get("TrainingRun", [])],
        "serving": [_deployment(d) for d in by_kind.get("ModelDeployed", [])],
        "lineage": [
            {"node": h.node, "depth": h.depth, "edge": h.edge_type, "via": h.via} for h in upstream
        ],
        "violations": [
            dict(zip(("rule_id", "severity", "decision", "message", "event"), v, strict=True))
            for v in violations
        ],
        "drift_alerts": [
            dict(
                zip(
                    (
                        "state",
                        "severity",
                        "feature",
                        "statistic",
                        "value",
                        "window_start",
                        "window_end",
                    ),
                    d,
                    strict=True,
                )
            )
            for d in drift
        ],
        "chain_verification": chain,
    }


def _stream_check(report: VerifyReport, stream: str) -> dict[str, Any]:
    findings = [f for f in report.findings if f.stream == stream]
    head = report.heads.get(stream)
    return {
        "stream": stream,
        "ok": not findings,
        "events": head.next_sequence if head else 0,
        "findings": [f"{f.kind}: seq {f.sequence}: {f.detail}" for f in findings],
    }


def _asset(a: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "asset_id",
        "classification",
        "origin_jurisdictions",
        "subject_jurisdictions",
        "residency",
        "location",
    )
    return {k: a.get(k) for k in keys}


def _transfer(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "asset_id": m["asset_id"],
        "to": m.get("target_asset_id"),
        "from": m["source"],
        "dest": m["destination"],
        "mechanism": m.get("mechanism"),
        "purpose": m.get("purpose"),
        "when": m["envelope"]["event_time"],
    }


def _training(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": t["run_id"],
        "status": t["status"],
        "inputs": t["inputs"],
        "location": t["location"],
        "model_version": t.get("model_version"),
        "when": t["envelope"]["event_time"],
    }


def _deployment(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "deployment_id": d["deployment_id"],
        "status": d["status"],
        "location": d["location"],
        "when": d["envelope"]["event_time"],
    }


def to_markdown(bundle: dict[str, Any]) -> str:
    lines = [f"# Evidence: {bundle['model_version']}", ""]
    sections = [
        ("Sources", "sources"),
        ("Transfers", "transfers"),
        ("Training", "training"),
        ("Serving", "serving"),
        ("Violations", "violations"),
        ("Drift alerts", "drift_alerts"),
        ("Chain verification", "chain_verification"),
    ]
    for title, key in sections:
        lines += [f"## {title}", ""]
        items = bundle[key]
        if not items:
            lines += ["(none)", ""]
            continue
        lines += [f"- {json.dumps(item, default=str, sort_keys=True)}" for item in items] + [""]
    return "\n".join(lines)
