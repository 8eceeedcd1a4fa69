"""Alert events emitted by the stream processors; each carries the evidence to replay it in SQL."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from auditline.events.records import Event
from auditline.events.types import (
    Decision,
    DriftState,
    IntegrityKind,
    NonEmpty,
    Severity,
    UtcTime,
)


class PolicyViolation(Event):
    SCHEMA: ClassVar[str] = "auditline.alerts.PolicyViolation"
    violation_id: NonEmpty
    decision: Decision
    severity: Severity
    rule_id: NonEmpty
    rule_version: NonEmpty
    policy_version: NonEmpty
    subject_event_id: NonEmpty
    message: str
    obligations: tuple[str, ...] = ()
    facts: dict[str, str] = Field(default_factory=dict)
    mechanism_ids: tuple[str, ...] = ()
    evidence_event_ids: tuple[str, ...] = ()


class DriftAlert(Event):
    SCHEMA: ClassVar[str] = "auditline.alerts.DriftAlert"
    alert_id: NonEmpty
    state: DriftState
    severity: Severity
    model_name: NonEmpty
    model_version: NonEmpty
    feature: str | None = None
    statistic: NonEmpty
    value: float
    threshold: float
    window_start: UtcTime
    window_end: UtcTime
    reference_count: int = Field(ge=0)
    window_count: int = Field(ge=0)
    training_run_id: NonEmpty
    statistics: dict[str, float] = Field(default_factory=dict)


class DataQualityAlert(Event):
    """A data-quality episode (missing values, out-of-range values, a type mismatch) of one
    feature of a model version, against its training run (``auditline.drift.quality``)."""

    SCHEMA: ClassVar[str] = "auditline.alerts.DataQualityAlert"
    alert_id: NonEmpty
    state: DriftState
    severity: Severity
    model_name: NonEmpty
    model_version: NonEmpty
    feature: NonEmpty
    check: NonEmpty
    rate: float
    reference_rate: float
    threshold: float
    affected: int = Field(ge=0)
    window_count: int = Field(ge=0)
    window_start: UtcTime
    window_end: UtcTime
    training_run_id: NonEmpty
    statistics: dict[str, float] = Field(default_factory=dict)


class PerformanceAlert(Event):
    """A model-quality episode of one metric of a model version: the metric over the window's
    predictions joined to their outcomes, against the training run's (``auditline.performance``)."""

    SCHEMA: ClassVar[str] = "auditline.alerts.PerformanceAlert"
    alert_id: NonEmpty
    state: DriftState
    severity: Severity
    model_name: NonEmpty
    model_version: NonEmpty
    metric: NonEmpty
    value: float
    baseline: float
    threshold: float
    window_start: UtcTime
    window_end: UtcTime
    outcomes: int = Field(ge=0)
    coverage: float
    label_delay_p50_s: float
    training_run_id: NonEmpty
    statistics: dict[str, float] = Field(default_factory=dict)


class IntegrityAlert(Event):
    SCHEMA: ClassVar[str] = "auditline.alerts.IntegrityAlert"
    alert_id: NonEmpty
    kind: IntegrityKind
    severity: Severity
    stream: NonEmpty
    expected_sequence: int | None = None
    observed_sequence: int
    subject_event_id: NonEmpty
    detail: str
    evidence_event_ids: tuple[str, ...] = ()
