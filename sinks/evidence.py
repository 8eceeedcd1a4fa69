"""``auditline evidence MODEL:VERSION``: everything an auditor needs about one model version.

Complete by construction: the lineage of the version (every upstream asset, copy and training
run, the version's deployments and predictions) is turned into one SQL condition over the audit
log (``lineage_condition``), and every other section is read through it. A decision belongs to
the bundle when the event it judged is a lineage event, whatever hop, rule or event status
produced it (a TrainingRun ``started`` or a single prediction included). Not by its evidence
alone: evidence accumulates along lineage, so another version trained on the same copy carries
this version's copy event in its evidence without being about this version.

Sections: sources and their jurisdictions, transfers, training runs (every status), serving,
violations, drift alerts, data-quality alerts, model-quality (outcome) alerts, integrity alerts
and the verification of every producer stream those events belong to. ``to_markdown`` renders
it as a report (tables, no raw JSON).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditline.errors import ConfigError, NotFoundError

from .queries import Provenance
from .store import Store
from .verification import VerifyOptions, VerifyReport, verify_log

_LISTED = ("AssetDeclared", "DataMovement", "TrainingRun", "ModelDeployed")


def lineage_condition(db: str) -> str:
    """SQL over ``{db}.audit_log`` selecting the lineage's events (parameters: assets, runs,
    name, version)."""
    return (
        f"SELECT event_id FROM {db}.audit_log WHERE "
        "(kind = 'AssetDeclared' AND asset_id IN {assets:Array(String)}) "
        "OR (kind = 'DataMovement' AND asset_id IN {assets:Array(String)} "
        "    AND (JSONExtractString(payload, 'target_asset_id') = '' "
        "         OR JSONExtractString(payload, 'target_asset_id') IN {assets:Array(String)})) "
        "OR (kind = 'TrainingRun' AND (JSONExtractString(payload, 'run_id') IN {runs:Array(String)}"
        "    OR (model_name = {name:String} AND model_version = {version:String}))) "
        "OR (kind IN ('ModelDeployed', 'Prediction', 'PredictionBatch') "
        "    AND model_name = {name:String} AND model_version = {version:String})"
    )


@dataclass(frozen=True)
class _Lineage:
    """One model version's lineage as SQL: every section of the bundle reads through it."""

    store: Store
    params: dict[str, Any]

    @property
    def db(self) -> str:
        return f"`{self.store.database}`"

    @property
    def events(self) -> str:
        return lineage_condition(self.db)

    def rows(self, sql: str, **more: Any) -> list[dict[str, Any]]:
        return _dicts(*self.store.rows(sql, {**self.params, **more}))

    def by_kind(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows(
            f"SELECT kind, payload FROM {self.db}.audit_log WHERE event_id IN ({self.events}) "
            "AND kind IN {listed:Array(String)} ORDER BY event_time, stream, sequence",
            listed=list(_LISTED),
        ):
            found.setdefault(row["kind"], []).append(json.loads(row["payload"]))
        return found

    def violations(self) -> list[dict[str, Any]]:
        db = self.db
        return self.rows(
            "SELECT v.rule_id AS rule_id, v.decision AS decision, v.severity AS severity, "
            "v.facts['hop'] AS hop, v.message AS message, v.subject_event_id AS event, "
            f"s.event_time AS event_time FROM {db}.violations AS v FINAL "
            f"LEFT JOIN (SELECT toString(event_id) AS id, event_time FROM {db}.audit_log) AS s "
            "ON s.id = v.subject_event_id WHERE v.subject_event_id IN "
            f"(SELECT toString(event_id) FROM ({self.events})) ORDER BY event_time, rule_id"
        )

    def drift(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT state, severity, feature, statistic, value, threshold, window_start, "
            f"window_end FROM {self.db}.drift_alerts FINAL WHERE model_name = {{name:String}} "
            "AND model_version = {version:String} ORDER BY window_start, feature"
        )

    def quality(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT state, severity, feature, `check`, rate, reference_rate, threshold, "
            f"window_start, window_end FROM {self.db}.quality_alerts FINAL "
            "WHERE model_name = {name:String} AND model_version = {version:String} "
            "ORDER BY window_start, feature, `check`"
        )

    def performance(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT state, severity, metric, value, baseline, threshold, outcomes, coverage, "
            f"window_start, window_end FROM {self.db}.performance_alerts FINAL "
            "WHERE model_name = {name:String} AND model_version = {version:String} "
            "ORDER BY window_start, metric"
        )

    def streams(self) -> list[str]:
        rows = self.rows(
            f"SELECT DISTINCT stream FROM {self.db}.audit_log WHERE event_id IN ({self.events})"
        )
        return sorted(row["stream"] for row in rows)

    def integrity(self, streams: list[str]) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT kind, severity, stream, observed_sequence AS sequence, detail, event_time "
            f"FROM {self.db}.integrity_alerts FINAL WHERE stream IN {{streams:Array(String)}} "
            "ORDER BY event_time",
            streams=streams,
        )


def evidence(
    provenance: Provenance, model_version: str, verify: VerifyOptions | None = None
) -> dict[str, Any]:
    node = provenance.model_node(_checked(model_version))
    name, version = node.split(":", 2)[1:]
    upstream = provenance.upstream(node, depth=50)
    nodes = [h.node for h in upstream]
    lineage = _Lineage(provenance.store, {
        "assets": [n for n in nodes if not n.startswith(("run:", "model:", "deployment:"))],
        "runs": [n.removeprefix("run:") for n in nodes if n.startswith("run:")],
        "name": name, "version": version,
    })  # fmt: skip
    by_kind = lineage.by_kind()
    if not by_kind and not upstream:
        database = provenance.store.database
        raise NotFoundError(
            f"no model version {name}:{version} in {database}: "
            'list versions with `auditline sql "SELECT DISTINCT model_name, model_version '
            f"FROM {database}.audit_log WHERE kind = 'TrainingRun'\"`"
        )
    streams = lineage.streams()
    options = verify or VerifyOptions()
    report = verify_log(
        provenance.store, keys=options.keys, require_signature=options.require_signature,
        attestation_key=options.attestation_key, settle=options.settle, streams=streams,
    )  # fmt: skip
    return {
        "model_version": node,
        "sources": [_asset(a) for a in by_kind.get("AssetDeclared", [])],
        "transfers": [_transfer(m) for m in by_kind.get("DataMovement", [])],
        "training": [_training(t) for t in by_kind.get("TrainingRun", [])],
        "serving": [_deployment(d) for d in by_kind.get("ModelDeployed", [])],
        "lineage": [
            {"node": h.node, "depth": h.depth, "edge": h.edge_type, "via": h.via} for h in upstream
        ],
        "violations": lineage.violations(),
        "drift_alerts": lineage.drift(),
        "quality_alerts": lineage.quality(),
        "performance_alerts": lineage.performance(),
        "integrity_alerts": lineage.integrity(streams),
        "chain_verification": [_stream_check(report, stream) for stream in streams],
    }


def _checked(model_version: str) -> str:
    name, _, version = model_version.removeprefix("model:").rpartition(":")
    if not name or not version:
        raise ConfigError(
            f"{model_version} is not a model version: give NAME:VERSION, e.g. churn:3"
        )
    return model_version


def _dicts(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _stream_check(report: VerifyReport, stream: str) -> dict[str, Any]:
    findings = [f for f in report.findings if f.stream == stream]
    head = report.heads.get(stream)
    return {
        "stream": stream,
        "ok": not findings,
        "events": head.next_sequence if head else 0,
        "findings": [f"{f.kind}: seq {f.sequence}: {f.detail}" for f in findings],
    }


def _place(location: dict[str, Any] | None) -> str:
    if not location:
        return ""
    parts = [location.get("country"), location.get("provider"), location.get("region")]
    return " ".join(str(p) for p in parts if p)


def _asset(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "asset_id": a["asset_id"],
        "classification": a.get("classification"),
        "origin_jurisdictions": list(a.get("origin_jurisdictions") or []),
        "subject_jurisdictions": list(a.get("subject_jurisdictions") or []),
        "residency": list(a.get("residency") or []),
        "location": _place(a.get("location")),
    }


def _transfer(m: dict[str, Any]) -> dict[str, Any]:
    mechanism = m.get("mechanism") or {}
    return {
        "asset_id": m["asset_id"],
        "to": m.get("target_asset_id"),
        "from": _place(m["source"]),
        "dest": _place(m["destination"]),
        "mechanism": mechanism.get("kind"),
        "purpose": m.get("purpose"),
        "when": m["envelope"]["event_time"],
    }


def _training(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": t["run_id"],
        "status": t["status"],
        "inputs": list(t.get("inputs") or []),
        "location": _place(t.get("location")),
        "model_version": t.get("model_version"),
        "when": t["envelope"]["event_time"],
    }


def _deployment(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "deployment_id": d["deployment_id"],
        "status": d["status"],
        "location": _place(d.get("location")),
        "when": d["envelope"]["event_time"],
    }


def to_markdown(bundle: dict[str, Any], escape: Callable[[str], str] = str) -> str:
    """The bundle as a Markdown report: a table per section, times in ISO with their zone.

    ``escape``: applied to every value taken from the store (``html.escape`` for HTML output:
    stored ids are producers' text, never markup)."""
    from auditline.output import cell, markdown_table

    ok = all(check["ok"] for check in bundle["chain_verification"])
    lines = [
        f"# Evidence: {escape(bundle['model_version'])}",
        "",
        f"- violations: {len(bundle['violations'])}",
        f"- drift alerts: {len(bundle['drift_alerts'])}",
        f"- data-quality alerts: {len(bundle['quality_alerts'])}",
        f"- model-quality alerts: {len(bundle['performance_alerts'])}",
        f"- integrity alerts: {len(bundle['integrity_alerts'])}",
        f"- producer streams verified: {len(bundle['chain_verification'])}, "
        + ("all intact" if ok else "NOT intact"),
        "",
    ]
    sections = [
        ("Sources", "sources"),
        ("Transfers", "transfers"),
        ("Training runs", "training"),
        ("Serving", "serving"),
        ("Lineage", "lineage"),
        ("Violations", "violations"),
        ("Drift alerts", "drift_alerts"),
        ("Data-quality alerts", "quality_alerts"),
        ("Model-quality alerts (outcomes)", "performance_alerts"),
        ("Integrity alerts", "integrity_alerts"),
        ("Chain verification", "chain_verification"),
    ]
    for title, key in sections:
        items = bundle[key]
        lines += [f"## {title}", ""]
        if not items:
            lines += ["No entries.", ""]
            continue
        columns = list(items[0])
        rows = [[escape(cell(item[c])) for c in columns] for item in items]
        lines += [markdown_table(columns, rows), ""]
    return "\n".join(lines)


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def _inert(value: str) -> str:
    """A stored value as text in the HTML report: markup escaped, and every character Markdown
    gives a meaning (links, images, emphasis, code, table cells) backslash-escaped, so a
    producer's text can never become a link, an image or a script in an auditor's browser."""
    return _MARKDOWN.sub(r"\\\1", html.escape(value, quote=True))


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "table{border-collapse:collapse;margin:0 0 1.5em}"
    "th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#eee}"
)


def to_html(bundle: dict[str, Any]) -> str:
    """The Markdown report as one self-contained HTML page (print it to PDF from a browser)."""
    import markdown

    text = to_markdown(bundle, escape=_inert)
    body = markdown.markdown(text, extensions=["tables"], output_format="html")
    title = html.escape(f"Evidence: {bundle['model_version']}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>"
    )
