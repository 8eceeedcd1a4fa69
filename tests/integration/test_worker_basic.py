"""The stream processors on the real broker: violations with lineage evidence on the alerts
topic, integrity alerts for a replayed and a tampered record, and 10,000 bad records
dead-lettered with a reason while the worker keeps running."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import IntegrityAlert
from auditline.producer import AuditProducer
from tests.integration.test_worker import (
    emit_pinned_copy,
    platform_settings,
    produce_fuzz,
    violations,
    worker,
)
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.worker]


def test_worker_flags_violations_and_dead_letters_10k_bad_records(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    with AuditProducer(platform_settings(kafka_bootstrap, prefix, tmp_path)) as audit:
        declared, moved = emit_pinned_copy(audit)
        assert audit.flush(30)
    produce_fuzz(kafka_bootstrap, prefix, 10_000, seed=11)
    replay_and_tamper(kafka_bootstrap, prefix)

    process = worker(kafka_bootstrap, prefix, tmp_path)
    try:
        found = violations(kafka_bootstrap, prefix, 2)
        dead = read_topic(kafka_bootstrap, f"{prefix}.deadletter", 10_000, timeout=180)
        integrity = integrity_alerts(kafka_bootstrap, prefix, 3)
        assert process.poll() is None, "the worker must survive bad input"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    say(
        f"worker: {len(found)} violations, {len(integrity)} integrity alerts, {len(dead)} dead letters"
    )
    assert {(v.rule_id, v.subject_event_id) for v in found} == {
        ("RES-PIN", str(moved.event_id)),
        ("EU-US", str(moved.event_id)),
    }
    assert all(str(declared.event_id) in v.evidence_event_ids for v in found)
    assert len({(m.headers["source_topic"], m.headers["source_offset"]) for m in dead}) == 10_000
    assert all(m.headers.get("reason") for m in dead)
    # the movement record sent again: a duplicate; the declaration again with a changed payload:
    # tampered, and a duplicate of its sequence number
    assert {(a.kind.value, a.subject_event_id) for a in integrity} == {
        ("duplicate", str(moved.event_id)),
        ("tampered", str(declared.event_id)),
        ("duplicate", str(declared.event_id)),
    }


def replay_and_tamper(bootstrap: str, prefix: str) -> None:
    """The movement's record produced again as is, and the declaration's with its owner changed
    (same length, so it still decodes; the hash it carries no longer matches)."""
    movement = read_topic(bootstrap, f"{prefix}.movements", 1)[0]
    declaration = read_topic(bootstrap, f"{prefix}.assets", 1)[0]
    assert declaration.value.count(b"\x02o") == 1  # the owner "o" (length 1)
    raw = Producer({"bootstrap.servers": bootstrap})
    raw.produce(f"{prefix}.movements", movement.value, movement.key)
    raw.produce(f"{prefix}.assets", declaration.value.replace(b"\x02o", b"\x02x"), declaration.key)
    assert raw.flush(30) == 0


def integrity_alerts(bootstrap: str, prefix: str, expected: int) -> list[IntegrityAlert]:
    codec = SingleObjectCodec(Catalogue(prefix))
    found = read_topic(bootstrap, f"{prefix}.alerts.integrity", expected, timeout=60)
    return [a for a in (codec.decode(m.value) for m in found) if isinstance(a, IntegrityAlert)]
