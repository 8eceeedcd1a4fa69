"""The producer's Prometheus metrics: spool depth and oldest pending age while Kafka is away."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from auditline.demo import _bodies
from auditline.events import Prediction
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker
from auditline.producer.metrics import register_producer_metrics

PREDICTION = next(b for m, b in _bodies() if m is Prediction)


def samples(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.labels == {"service": "billing", "instance": "pod-1"}
            found[sample.name] = sample.value
    return found


def test_spool_depth_and_age_while_the_broker_is_away(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    registry = CollectorRegistry()
    register_producer_metrics(producer, registry)
    broker.available = False
    producer.emit_many(Prediction, [PREDICTION] * 5)
    time.sleep(0.2)
    away = samples(registry)
    assert away["auditline_producer_spool_records"] == 5
    assert away["auditline_producer_oldest_pending_seconds"] >= 0.2
    assert away["auditline_producer_spool_bytes"] > 0
    assert away["auditline_producer_emitted_total"] == 5
    broker.available = True
    assert producer.flush(10)
    back = samples(registry)
    assert back["auditline_producer_spool_records"] == 0
    assert back["auditline_producer_oldest_pending_seconds"] == 0
    assert back["auditline_producer_delivered_total"] == 5
