"""One alert as subscribers see it, whatever its kind: the fields filters match and payloads carry.

``AlertView.of(event)`` reads a PolicyViolation, DriftAlert, DataQualityAlert, PerformanceAlert
or IntegrityAlert; ``to_json()`` is the documented webhook/SSE/``tail --json`` body
(docs/alerts.md). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditline.drift import explain
from auditline.events import (
    DataQualityAlert,
    DriftAlert,
    Event,
    IntegrityAlert,
    PerformanceAlert,
    PolicyViolation,
)

SEVERITIES = ("info", "low", "medium", "high", "critical")
KINDS = ("violation", "drift", "quality", "performance", "integrity")


@dataclass(frozen=True)
class Position:
    """Where the alert sits in Kafka (resume points, idempotent delivery)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class AlertView:
    alert_id: str
    kind: str  # violation | drift | quality | performance | integrity
    severity: str
    rule: str  # rule id, drift statistic, data-quality check, model metric, integrity finding
    title: str  # what happened, one line
    where: str  # where it happened, one line
    time: str  # ISO 8601 with zone: when the alert was raised
    state: str = ""  # drift, quality, performance: opened | closed; violations: the decision
    jurisdictions: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()  # "name:version"
    assets: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()  # producer services the alert is about
    evidence: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    position: Position | None = None

    @classmethod
    def of(cls, event: Event, position: Position | None = None) -> AlertView | None:
        """The view of an alert event; None for any other event."""
        if isinstance(event, PolicyViolation):
            return _violation(event, position)
        if isinstance(event, DriftAlert):
            return _drift(event, position)
        if isinstance(event, DataQualityAlert):
            return _quality(event, position)
        if isinstance(event, PerformanceAlert):
            return _performance(event, position)
        if isinstance(event, IntegrityAlert):
            return _integrity(event, position)
        return None

    def to_json(self) -> dict[str, Any]:
        """The alert body every delivery carries (docs/alerts.md, "Payload")."""
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "severity": self.severity,
            "rule": self.rule,
            "state": self.state,
            "title": self.title,
            "where": self.where,
            "time": self.time,
            "jurisdictions": sorted(self.jurisdictions),
            "models": sorted(self.models),
            "assets": sorted(self.assets),
            "services": sorted(self.services),
            "evidence_event_ids": list(self.evidence),
            "details": self.details,
        }


def _nodes(via: str) -> tuple[frozenset[str], frozenset[str]]:
    """Models and assets named in a violation's lineage chain ("a <- b <- model:m:1")."""
    nodes = [n.strip() for n in via.split("<-") if n.strip()]
    models = {n.removeprefix("model:") for n in nodes if n.startswith("model:")}
    assets = {n for n in nodes if not n.startswith(("model:", "run:", "deployment:"))}
    return frozenset(models), frozenset(assets)


def _violation(e: PolicyViolation, position: Position | None) -> AlertView:
    facts = e.facts
    models, assets = _nodes(facts.get("via", ""))
    countries = {facts[k] for k in ("from", "to") if facts.get(k)}
    hop = facts.get("hop", "")
    route = f"{facts.get('from', '?')} -> {facts.get('to', '?')}" if countries else ""
    return AlertView(
        alert_id=e.violation_id, kind="violation", severity=str(e.severity), rule=e.rule_id,
        title=e.message, where=" ".join(p for p in (hop, route, facts.get("via", "")) if p),
        time=e.envelope.event_time.isoformat(), state=str(e.decision),
        jurisdictions=frozenset(countries), models=models, assets=assets,
        services=frozenset(filter(None, [facts.get("service", "")])),
        evidence=(e.subject_event_id, *e.evidence_event_ids),
        details={"facts": dict(facts), "obligations": list(e.obligations),
                 "policy_version": e.policy_version, "rule_version": e.rule_version},
        position=position,
    )  # fmt: skip


def _of_model(e: DriftAlert | DataQualityAlert | PerformanceAlert, span: str) -> dict[str, Any]:
    """What every alert about a model version's window says alike: where, when, its state, the
    model version and the training run it was judged against."""
    return {
        "where": f"model {e.model_name}:{e.model_version}, {span} "
                 f"{e.window_start.isoformat()} to {e.window_end.isoformat()}",
        "time": e.envelope.event_time.isoformat(), "state": str(e.state),
        "models": frozenset({f"{e.model_name}:{e.model_version}"}),
        "evidence": (e.training_run_id,),
    }  # fmt: skip


def _drift(e: DriftAlert, position: Position | None) -> AlertView:
    subject = e.feature or "predictions"
    onset = explain.onset(e.statistic)
    return AlertView(
        alert_id=e.alert_id, kind="drift", severity=str(e.severity), rule=e.statistic,
        title=f"{'gradual ' if onset == 'gradual' else ''}drift {e.state} on {subject}: "
              f"{e.statistic} {e.value:.4g} (threshold {e.threshold:.4g})",
        **_of_model(e, "window"),
        details={"feature": e.feature, "value": e.value, "threshold": e.threshold,
                 "window_count": e.window_count, "reference_count": e.reference_count,
                 "onset": onset, "test": explain.decided_by(e.statistic, e.statistics)},
        position=position,
    )  # fmt: skip


CHECK_TITLES = {
    "missing": "missing values", "out_of_range": "values outside the training range",
    "type_mismatch": "values of the other kind",
}  # fmt: skip


def _quality(e: DataQualityAlert, position: Position | None) -> AlertView:
    what = CHECK_TITLES.get(e.check, e.check)
    return AlertView(
        alert_id=e.alert_id, kind="quality", severity=str(e.severity), rule=e.check,
        title=f"data quality {e.state} on {e.feature}: {what} {e.rate:.2%} "
              f"(threshold {e.threshold:.2%}, training {e.reference_rate:.2%})",
        **_of_model(e, "window"),
        details={"feature": e.feature, "check": e.check, "rate": e.rate,
                 "reference_rate": e.reference_rate, "threshold": e.threshold,
                 "affected": e.affected, "window_count": e.window_count,
                 "test": explain.quality_test(e.check, e.rate, e.reference_rate, e.statistics)},
        position=position,
    )  # fmt: skip


def _performance(e: PerformanceAlert, position: Position | None) -> AlertView:
    return AlertView(
        alert_id=e.alert_id, kind="performance", severity=str(e.severity), rule=e.metric,
        title=f"model quality {e.state} on {e.metric}: {e.value:.4g} "
              f"(threshold {e.threshold:.4g}, training {e.baseline:.4g}; "
              f"{e.outcomes} outcomes, coverage {e.coverage:.0%})",
        **_of_model(e, "predictions of"),
        details={"metric": e.metric, "value": e.value, "baseline": e.baseline,
                 "threshold": e.threshold, "outcomes": e.outcomes, "coverage": e.coverage,
                 "label_delay_p50_s": e.label_delay_p50_s},
        position=position,
    )  # fmt: skip


def _integrity(e: IntegrityAlert, position: Position | None) -> AlertView:
    service = e.stream.split("/", 1)[0]
    return AlertView(
        alert_id=e.alert_id, kind="integrity", severity=str(e.severity), rule=str(e.kind),
        title=f"{e.kind}: {e.detail}", where=f"stream {e.stream} at sequence {e.observed_sequence}",
        time=e.envelope.event_time.isoformat(), services=frozenset({service}),
        evidence=(e.subject_event_id, *e.evidence_event_ids),
        details={"stream": e.stream, "expected_sequence": e.expected_sequence,
                 "observed_sequence": e.observed_sequence},
        position=position,
    )  # fmt: skip
