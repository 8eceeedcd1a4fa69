"""The stream processors on the real broker: violations with lineage evidence on the alerts
topic, and 10,000 bad records dead-lettered with a reason while the worker keeps running."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from auditline.producer import AuditProducer
from tests.integration.test_worker import (
    emit_pinned_copy,
    platform_settings,
    produce_fuzz,
    violations,
    worker,
)
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.integration


def test_worker_flags_violations_and_dead_letters_10k_bad_records(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    with AuditProducer(platform_settings(kafka_bootstrap, prefix, tmp_path)) as audit:
        declared, moved = emit_pinned_copy(audit)
        assert audit.flush(30)
    produce_fuzz(kafka_bootstrap, prefix, 10_000, seed=11)

    process = worker(kafka_bootstrap, prefix, tmp_path)
    try:
        found = violations(kafka_bootstrap, prefix, 2)
        dead = read_topic(kafka_bootstrap, f"{prefix}.deadletter", 10_000, timeout=180)
        assert process.poll() is None, "the worker must survive bad input"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    say(f"worker: {len(found)} violations, {len(dead)} dead letters")
    assert {(v.rule_id, v.subject_event_id) for v in found} == {
        ("RES-PIN", str(moved.event_id)),
        ("EU-US", str(moved.event_id)),
    }
    assert all(str(declared.event_id) in v.evidence_event_ids for v in found)
    assert len({(m.headers["source_topic"], m.headers["source_offset"]) for m in dead}) == 10_000
    assert all(m.headers.get("reason") for m in dead)
