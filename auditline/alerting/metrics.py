"""Prometheus metrics of the alerts service (prometheus-client; docs/alerts.md lists them).

One ``AlertMetrics`` per process, on a registry of its own (tests and embedded uses get fresh
ones); ``exposition()`` is what ``GET /metrics`` returns.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class AlertMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "auditline_alerts_consumed", "Alerts read, by subscription and kind",
            ["subscription", "kind"], registry=r,
        )  # fmt: skip
        self.matched = Counter(
            "auditline_alerts_matched", "Alerts that passed a subscription's filters, by rule and "
            "severity", ["subscription", "rule", "severity"], registry=r,
        )  # fmt: skip
        self.deliveries = Counter(
            "auditline_webhook_deliveries", "Webhook deliveries by outcome (delivered, "
            "dead_lettered)", ["subscription", "outcome"], registry=r,
        )  # fmt: skip
        self.attempts = Counter(
            "auditline_webhook_attempts", "Webhook requests by result (2xx, 4xx, 5xx, error)",
            ["subscription", "result"], registry=r,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "auditline_webhook_request_seconds", "Duration of one webhook request",
            ["subscription"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.delivery_lag = Histogram(
            "auditline_alert_delivery_lag_seconds", "From the alert's time to its delivery",
            ["subscription"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.consumer_lag = Gauge(
            "auditline_alerts_consumer_lag", "Alerts not yet handled, per partition",
            ["subscription", "topic", "partition"], registry=r,
        )  # fmt: skip
        self.sse_clients = Gauge(
            "auditline_sse_clients", "Open SSE streams", ["subscription"], registry=r
        )
        self.ready = Gauge("auditline_ready", "1 when the broker answers", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
