"""The platform's detector stage, as the worker does it: read what arrived, judge, publish.

Each ``drain`` reads the messages that reached the in-process broker since the last one, decodes
them and hands them to the embedded runner (the default policy pack's engine, the chain
verifier with the demo keyring, the drift and model-quality detectors); what fires is published
at once as signed PolicyViolation, DriftAlert, DataQualityAlert, PerformanceAlert and
IntegrityAlert events (they are read back,
and verified, by the next drain) and returned, so that it can be shown as it fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditline.alerting.bodies import integrity_body, violation_body
from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demoplatform.serving import QUALITY
from auditline.drift.offline import DriftSettings
from auditline.events import (
    DataQualityAlert,
    DriftAlert,
    Event,
    IntegrityAlert,
    PerformanceAlert,
    PolicyViolation,
)
from auditline.integrity.signing import Keys
from auditline.integrity.verify import Finding
from auditline.policy.decisions import Decision
from auditline.policy.engine import PolicyEngine
from auditline.policy.model import load_policy
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker
from auditline.runner import EmbeddedRunner, RunResult


@dataclass
class Fired:
    """What one drain raised, with the events it judged (by event id) to place it in time."""

    decisions: list[Decision] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    events: dict[str, Event] = field(default_factory=dict)
    quality: list[dict[str, Any]] = field(default_factory=list)  # DataQualityAlert fields
    performance: list[dict[str, Any]] = field(default_factory=list)  # PerformanceAlert fields

    def add(self, other: Fired) -> None:
        self.decisions += other.decisions
        self.drift += other.drift
        self.quality += other.quality
        self.performance += other.performance
        self.findings += other.findings
        self.events |= other.events


class Detectors:
    def __init__(self, broker: InProcessBroker, keys: Keys, alerts: AuditProducer) -> None:
        self.broker = broker
        self.policy = load_policy()
        self.runner = EmbeddedRunner(
            PolicyEngine(self.policy), keys, drift=DriftSettings(), performance=QUALITY
        )
        self.codec = SingleObjectCodec(Catalogue())
        self.alerts = alerts
        self.offsets: dict[str, int] = {}
        self.seen = Fired()
        self.events = 0

    def _arrived(self) -> list[Event]:
        events = []
        for topic in list(self.broker.topics):
            messages = self.broker.read(topic, self.offsets.get(topic, 0))
            self.offsets[topic] = self.offsets.get(topic, 0) + len(messages)
            events += [self.codec.decode(m.value) for m in messages]
        self.events += len(events)
        return events

    def drain(self) -> Fired:
        """Judge what arrived since the last drain; publish and return what fired."""
        events = self._arrived()
        result = self.runner.run_events(events, RunResult())
        by_id = {str(e.envelope.event_id): e for e in events}
        fired = Fired(
            result.decisions, result.drift_alerts, result.findings, by_id, result.quality_alerts,
            result.performance_alerts,
        )  # fmt: skip
        self._publish(fired)
        return fired

    def finish(self) -> Fired:
        """End of input: the drift windows still open are judged."""
        result = self.runner.finish_drift()
        fired = Fired(
            drift=result.drift_alerts, quality=result.quality_alerts,
            performance=result.performance_alerts,
        )  # fmt: skip
        self._publish(fired)
        return fired

    def _publish(self, fired: Fired) -> None:
        version = self.policy.version
        if fired.decisions:
            bodies = [violation_body(d, version) for d in fired.decisions]
            self.alerts.emit_many(PolicyViolation, bodies)
        if fired.drift:
            self.alerts.emit_many(DriftAlert, fired.drift)
        if fired.quality:
            self.alerts.emit_many(DataQualityAlert, fired.quality)
        if fired.performance:
            self.alerts.emit_many(PerformanceAlert, fired.performance)
        if fired.findings:
            bodies = [integrity_body(f, fired.events[f.event_id]) for f in fired.findings]
            self.alerts.emit_many(IntegrityAlert, bodies)
        self.seen.add(fired)
