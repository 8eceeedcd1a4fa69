"""Many producer streams on the real broker: the worker reads its own state writes back from the
changelog of its global tables; an older one read back must not replace a newer one (a stream
head one batch behind looked like a gap: 1,200 false integrity alerts over this backlog)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from auditline.events import AssetDeclared, DataMovement, Event
from auditline.producer import AuditProducer, Receipt
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings
from tests.integration.test_worker import PARTY, violations_until, worker
from tests.integration.test_worker_order import BENIGN, PINNED
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.worker]
STREAMS, EVENTS = 200, 100  # producer streams, movements each: 20,000 in all


def sealed(
    tmp: Path, instance: str, model: type[Event], bodies: list[dict[str, Any]]
) -> tuple[list[Receipt], list[tuple[str, bytes, bytes]]]:
    """Events of one producer stream sealed by the SDK (in-process): their receipts and the
    (topic, key, value) records, for a test to publish where it wants them."""
    broker = InProcessBroker()
    settings = AuditlineSettings(producer={"service": "svc", "instance": instance},
                                 spool={"path": str(tmp / "spools"), "fsync": "never"})  # fmt: skip
    with AuditProducer(settings, transport=InProcessTransport(broker, 10**6)) as audit:
        receipts = audit.emit_many(model, bodies)
        assert audit.flush(30)
    return receipts, [(t, m.key, m.value) for t, log in broker.topics.items() for m in log]


def sealed_streams(tmp: Path) -> list[list[tuple[str, bytes, bytes]]]:
    """(topic, key, value) of each stream's movements (one producer each)."""
    return [sealed(tmp, f"i{i}", DataMovement, [BENIGN] * EVENTS)[1] for i in range(STREAMS)]


def test_many_streams_raise_no_false_integrity_alerts(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    raw = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    for batch in zip(*sealed_streams(tmp_path), strict=True):  # interleaved, each stream in order
        for topic, key, value in batch:
            raw.produce(topic.replace("auditline.", f"{prefix}.", 1), value, key)
        raw.poll(0)
    assert raw.flush(30) == 0
    settings = AuditlineSettings(kafka={"bootstrap_servers": kafka_bootstrap}, topic_prefix=prefix,
                                 producer={"service": "platform", "instance": "p1"},
                                 spool={"path": str(tmp_path / "spool"), "fsync": "never"})  # fmt: skip
    with AuditProducer(settings) as audit:  # read after the backlog: the end is in sight
        audit.emit(AssetDeclared, **PINNED)
        last = audit.emit(DataMovement, **{**BENIGN, "asset_id": "ds", "importer": PARTY,
                                           "destination": {"country": "US"}})  # fmt: skip
        assert audit.flush(30)
    process = worker(kafka_bootstrap, prefix, tmp_path)
    try:
        found = violations_until(kafka_bootstrap, prefix, str(last.event_id), timeout=180)
        assert any(v.subject_event_id == str(last.event_id) for v in found)
        integrity = read_topic(kafka_bootstrap, f"{prefix}.alerts.integrity", 0, timeout=5)
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    say(f"{STREAMS} streams x {EVENTS} movements: {len(integrity)} integrity alerts")
    assert integrity == [], f"{len(integrity)} false integrity alerts on intact streams"
