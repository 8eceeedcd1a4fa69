"""Alert events as the stream processors publish them, for the alerting tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from auditline.events import (
    ZERO_HASH,
    DataQualityAlert,
    DriftAlert,
    Envelope,
    IntegrityAlert,
    PolicyViolation,
    ProducerInfo,
)
from auditline.integrity.chain import seal

T0 = datetime(2026, 3, 2, 9, 4, tzinfo=UTC)
WORKER = ProducerInfo(service="worker", instance="w1", location={"country": "DE"})


def envelope(stream: str = "worker/w1/alerts.violations") -> Envelope:
    return Envelope(event_id=uuid4(), event_time=T0, producer=WORKER, stream=stream,
                    sequence=0, prev_hash=ZERO_HASH, hash=ZERO_HASH)  # fmt: skip


def violation_body(n: int = 0, **change: Any) -> dict[str, Any]:
    return {
        "violation_id": f"v-{n}", "decision": "deny", "severity": "high", "rule_id": "RES-PIN",
        "rule_version": "1", "policy_version": "2026.1", "subject_event_id": f"e-{n}",
        "message": "data pinned to DE reaches US (serving)",
        "facts": {"hop": "serving", "from": "DE", "to": "US",
                  "via": "ds:customers <- ds:customers-us <- model:churn:3"},
        **change,
    }  # fmt: skip


def violation(n: int = 0, **change: Any) -> PolicyViolation:
    return seal(PolicyViolation(envelope=envelope(), **violation_body(n, **change)))


def drift(state: str = "opened") -> DriftAlert:
    return seal(DriftAlert(
        envelope=envelope("worker/w1/alerts.drift"), alert_id="d-1", state=state,
        severity="medium", model_name="churn", model_version="3", feature="tenure",
        statistic="psi", value=0.31, threshold=0.2, window_start=T0, window_end=T0,
        reference_count=100, window_count=100, training_run_id="run-42",
    ))  # fmt: skip


def quality(state: str = "opened") -> DataQualityAlert:
    return seal(DataQualityAlert(
        envelope=envelope("worker/w1/alerts.quality"), alert_id="q-1", state=state,
        severity="high", model_name="churn", model_version="3", feature="tenure",
        check="missing", rate=0.3, reference_rate=0.01, threshold=0.21, affected=150,
        window_count=500, window_start=T0, window_end=T0, training_run_id="run-42",
        statistics={"p_value": 1e-30, "z": 11.5},
    ))  # fmt: skip


def integrity() -> IntegrityAlert:
    return seal(IntegrityAlert(
        envelope=envelope("worker/w1/alerts.integrity"), alert_id="i-1", kind="gap",
        severity="high", stream="billing/pod-1/movements", expected_sequence=4,
        observed_sequence=6, subject_event_id="e-9", detail="sequences 4..5 missing",
    ))  # fmt: skip
