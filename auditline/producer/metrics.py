"""Prometheus metrics of an ``AuditProducer``, read when scraped: nothing is added to ``emit``.

A service exposes its producer's spool beside its own metrics with one call::

    from auditline.producer.metrics import register_producer_metrics
    register_producer_metrics(producer)              # prometheus-client's default registry

Needs ``prometheus-client`` (the ``auditline[metrics]`` extra). docs/producer.md lists the names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditline.producer.core import AuditProducer

LABELS = ["service", "instance"]


class ProducerCollector:
    """Spool depth, bytes and oldest pending age, and the producer's delivery counters."""

    def __init__(self, producer: AuditProducer) -> None:
        self.producer = producer

    def describe(self) -> list[Any]:
        return []  # the names are fixed; collect() is not run at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        producer, spool = self.producer, self.producer.spool
        who = [producer.identity.service, producer.identity.instance]
        gauges = (
            ("auditline_producer_spool_records", "Events spooled, not yet acknowledged by Kafka",
             spool.unacked),
            ("auditline_producer_spool_bytes", "Bytes of the spool's live segments",
             spool.live_bytes),
            ("auditline_producer_spool_max_bytes", "The spool's bound (AUDITLINE_SPOOL__MAX_BYTES)",
             spool.settings.max_bytes),
            ("auditline_producer_oldest_pending_seconds", "Age of the oldest event not yet "
             "acknowledged (0 when none is)", spool.oldest_pending_s()),
        )  # fmt: skip
        for name, text, value in gauges:
            family = GaugeMetricFamily(name, text, labels=LABELS)
            family.add_metric(who, value)
            yield family
        stats = producer.stats
        counters = (
            ("auditline_producer_emitted", "Events accepted by emit", stats.emitted),
            ("auditline_producer_delivered", "Events acknowledged by Kafka", stats.delivered),
            ("auditline_producer_delivery_failures", "Failed delivery attempts (the event stays "
             "spooled and is sent again)", stats.delivery_failures),
            ("auditline_producer_recoveries", "Transport restarts after a failure or a restart",
             stats.recoveries),
        )  # fmt: skip
        for name, text, count in counters:
            counter = CounterMetricFamily(name, text, labels=LABELS)
            counter.add_metric(who, count)
            yield counter


def register_producer_metrics(producer: AuditProducer, registry: Any = None) -> ProducerCollector:
    """Add ``producer``'s metrics to ``registry`` (default: prometheus-client's ``REGISTRY``)."""
    from prometheus_client import REGISTRY

    collector = ProducerCollector(producer)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
