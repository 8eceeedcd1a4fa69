"""Prometheus metrics of the sink (docs/store.md lists them) and its readiness."""

from __future__ import annotations

import time
from typing import Any

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STORE_PROBE_S = 5.0


class SinkMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        self.consumed = Counter(
            "auditline_sink_consumed", "Records consumed, by topic", ["topic"], registry=r
        )
        self.stored = Counter("auditline_sink_stored", "Events stored in the audit log", registry=r)
        self.skipped = Counter(
            "auditline_sink_skipped_present", "Events already stored (replays)", registry=r
        )
        self.dead_letters = Counter(
            "auditline_sink_dead_letters", "Undecodable records sent to the dead-letter topic",
            registry=r,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "auditline_sink_batch_seconds", "Decode, insert and commit of one batch",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "auditline_sink_consumer_lag", "Records not yet stored, per partition",
            ["topic", "partition"], registry=r,
        )  # fmt: skip


class SinkReadiness:
    """Ready: partitions assigned, the store answers (probed every few seconds), and the lag of
    every partition within one batch."""

    def __init__(self, sink: Any, max_lag: int) -> None:
        self.sink, self.max_lag = sink, max_lag
        self._probed, self._store_ok = 0.0, False

    def __call__(self) -> tuple[bool, str]:
        if not self.sink.assigned.is_set():
            return False, "waiting for partitions"
        if time.monotonic() - self._probed > STORE_PROBE_S:
            self._probed = time.monotonic()
            try:
                self.sink.store.rows("SELECT 1")
                self._store_ok = True
            except Exception:  # noqa: BLE001 - any failure means not ready
                self._store_ok = False
        if not self._store_ok:
            return False, "the store does not answer"
        behind = max(self.sink.lag.values(), default=0)
        if behind > self.max_lag:
            return False, f"catching up: {behind} records behind"
        return True, "ok"
