"""Decisions and findings → alert events (pure mapping)."""

from __future__ import annotations

import hashlib
from typing import Any

from auditline.events import Event, IntegrityKind
from auditline.integrity.verify import Finding
from auditline.policy.decisions import Decision

_SEVERITY = {
    IntegrityKind.GAP: "high", IntegrityKind.DUPLICATE: "low", IntegrityKind.REORDER: "medium",
    IntegrityKind.BROKEN_CHAIN: "critical", IntegrityKind.BAD_SIGNATURE: "critical",
    IntegrityKind.UNSIGNED: "medium", IntegrityKind.TAMPERED: "critical",
    IntegrityKind.TRUNCATED: "critical", IntegrityKind.VANISHED: "critical",
    IntegrityKind.SILENT: "high",
}  # fmt: skip


def violation_body(
    decision: Decision, policy_version: str, trace_id: str | None = None
) -> dict[str, Any]:
    """The alert of a decision; the judged event's ``trace_id`` (an OpenLineage run id for an
    ingested event) joins its facts, so that the alert names the run it happened in."""
    facts = {**decision.facts, "trace_id": trace_id} if trace_id else decision.facts
    return {
        "violation_id": decision.decision_id, "decision": decision.decision,
        "severity": decision.severity, "rule_id": decision.rule_id,
        "rule_version": decision.rule_version, "policy_version": policy_version,
        "subject_event_id": decision.subject_event_id, "message": decision.message,
        "obligations": decision.obligations, "facts": facts,
        "mechanism_ids": decision.mechanism_ids, "evidence_event_ids": decision.evidence,
    }  # fmt: skip


def integrity_body(finding: Finding, event: Event) -> dict[str, Any]:
    key = f"{finding.kind}|{finding.stream}|{finding.sequence}|{finding.event_id}"
    return {
        "alert_id": hashlib.sha256(key.encode()).hexdigest()[:32], "kind": str(finding.kind),
        "severity": _SEVERITY.get(finding.kind, "medium"), "stream": finding.stream,
        "expected_sequence": finding.expected_sequence, "observed_sequence": finding.sequence,
        "subject_event_id": finding.event_id, "detail": finding.detail,
        "evidence_event_ids": (str(event.envelope.event_id),),
    }  # fmt: skip
