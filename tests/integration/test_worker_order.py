"""Lineage read out of order on the real broker: a training run read long before the copy that
created its input (5,000 movements ahead of it in a backlog) still inherits the residency pin."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from auditline.events import AssetDeclared, DataMovement, TrainingRun
from auditline.producer import AuditProducer, Receipt
from tests.integration.test_worker import (
    PARTY,
    platform_settings,
    violations,
    violations_until,
    worker,
)

pytestmark = [pytest.mark.integration, pytest.mark.worker]
PINNED = {"asset_id": "ds", "asset_kind": "dataset", "name": "ds", "owner": "o",
          "classification": "personal", "location": {"country": "DE"},
          "origin_jurisdictions": ["EEA"], "residency": ["DE"]}  # fmt: skip
BENIGN = {"asset_id": "other", "operation": "copy", "source": {"country": "DE"},
          "destination": {"country": "DE"}, "records": 1, "bytes": 1, "purpose": "analytics",
          "exporter": {**PARTY, "country": "DE"}, "importer": {**PARTY, "country": "DE"}}  # fmt: skip


def copy_and_train(audit: AuditProducer) -> tuple[Receipt, Receipt]:
    """The pinned dataset copied to France, then trained on there (read long before the copy)."""
    copied = audit.emit(DataMovement, asset_id="ds", target_asset_id="ds-fr", operation="copy",
                        source={"country": "DE"}, destination={"country": "FR"}, records=5,
                        bytes=5, purpose="analytics", exporter={**PARTY, "country": "DE"},
                        importer={**PARTY, "country": "FR"})  # fmt: skip
    trained = audit.emit(TrainingRun, run_id="r1", status="started", model_name="m",
                         inputs=["ds-fr"], code_version="c", location={"country": "FR"},
                         purpose="analytics")  # fmt: skip
    return copied, trained


def test_a_backlog_read_topic_by_topic_keeps_the_inherited_hops(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    with AuditProducer(platform_settings(kafka_bootstrap, prefix, tmp_path)) as audit:
        audit.emit(AssetDeclared, **PINNED)
        for _ in range(5):
            audit.emit_many(DataMovement, [BENIGN] * 1000)
        copied, trained = copy_and_train(audit)
        assert audit.flush(60)
    process = worker(kafka_bootstrap, prefix, tmp_path)
    try:
        found = violations(kafka_bootstrap, prefix, 2)
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    hops = {(v.rule_id, v.facts["hop"], v.subject_event_id) for v in found}
    say(f"backlog of 5,000 movements, training read first: {sorted(h[:2] for h in hops)}")
    assert hops == {
        ("RES-PIN", "movement", str(copied.event_id)),
        ("RES-PIN", "training", str(trained.event_id)),
    }


def test_a_held_back_training_run_survives_a_kill(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    """The training run waits for a copy at the end of 30,000 movements; the worker is killed
    mid-backlog and restarted: the training hop is still flagged, once."""
    prefix = f"t{unique}.auditline"
    marker = {**BENIGN, "asset_id": "ds", "destination": {"country": "US"}, "importer": PARTY}
    with AuditProducer(platform_settings(kafka_bootstrap, prefix, tmp_path)) as audit:
        audit.emit(AssetDeclared, **PINNED)
        for _ in range(30):  # a pinned copy to the US (2 violations) every 1,000: progress marks
            audit.emit_many(DataMovement, [marker] + [BENIGN] * 999)
        copied, trained = copy_and_train(audit)
        assert audit.flush(120)
    process = worker(kafka_bootstrap, prefix, tmp_path)
    try:
        violations(kafka_bootstrap, prefix, 6)  # a few thousand movements in: the run waits
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        process = worker(kafka_bootstrap, prefix, tmp_path)
        found = violations_until(kafka_bootstrap, prefix, str(trained.event_id), timeout=120)
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    by_id = {v.violation_id: v for v in found}
    about = {str(copied.event_id): "copy", str(trained.event_id): "training"}
    hops = sorted((about[v.subject_event_id], v.rule_id, v.facts["hop"])
                  for v in by_id.values() if v.subject_event_id in about)  # fmt: skip
    say(f"training held back across a kill -9: {hops}, {len(by_id)} distinct violations")
    assert hops == [("copy", "RES-PIN", "movement"), ("training", "RES-PIN", "training")]
    training = [v for v in by_id.values() if v.subject_event_id == str(trained.event_id)]
    assert [v.facts["hop"] for v in training] == ["training"]
    assert str(copied.event_id) in training[0].evidence_event_ids
