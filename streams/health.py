"""The worker's metrics, ``/healthz``, ``/readyz`` and its one-line ready log.

With ``AUDITLINE_METRICS__PORT`` set, ``auditline worker`` runs faust's own web server (aiohttp,
in the worker's event loop) on that port, with faust's built-in pages off (they expose table data
and the cluster's topology), and three pages of its own:

- ``/metrics``: Prometheus text (prometheus-client). The agents count per batch, not per event;
  consumer lag, assignment and the alert producer's spool are read when scraped;
- ``/healthz``: 200 while the process serves;
- ``/readyz``: 200 once the broker answers, the group's assignment is done, the tables
  recovered and every assigned input partition read to within ``READY_LAG`` records of its end;
  else 503 and why.

Whatever the port, the worker prints ``worker: ready: ...`` once, when it is first ready: what it
consumes, from where, as which group. docs/policy.md lists the metrics.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from aiohttp.web import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from auditline.errors import UnavailableError
from auditline.settings import AuditlineSettings
from auditline.topics import require_broker

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
PROBE_S = 5.0  # the broker is asked this often
READY_LAG = 1000  # records behind the end of a partition that still count as caught up


class WorkerMetrics:
    """The counters the agents update; the rest is collected when scraped (``StateCollector``)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.events = Counter(
            "auditline_worker_events", "Records taken by the agents, by topic", ["topic"],
            registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            "auditline_worker_dead_letters", "Undecodable records sent to the dead-letter topic, "
            "by source topic", ["topic"], registry=r,
        )  # fmt: skip
        self.alerts = Counter(
            "auditline_worker_alerts",
            "Alerts emitted, by kind (violation, integrity, drift, quality, performance), rule "
            "(rule id, integrity finding, drift statistic, data-quality check or model metric) "
            "and severity",
            ["kind", "rule", "severity"], registry=r,
        )  # fmt: skip
        self.model_quality = Gauge(
            "auditline_worker_model_quality", "The last judged window's model-quality figures "
            "per model version (docs/performance.md): metrics, coverage, label delay, counts",
            ["model", "version", "figure"], registry=r,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "auditline_worker_batch_seconds", "Time to handle one batch, by agent", ["agent"],
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip

    def took(self, topics: Iterable[str], agent: str, started: float) -> None:
        """One batch handled: its records by topic and its duration (from ``perf_counter``)."""
        for topic, count in Tally(topics).items():
            self.events.labels(topic).inc(count)
        self.batch_seconds.labels(agent).observe(time.perf_counter() - started)

    def alerted(self, kind: str, bodies: Sequence[dict[str, Any]]) -> None:
        for body in bodies:
            rule = (
                body.get("rule_id") or body.get("kind") or body.get("statistic")
                or body.get("check") or body.get("metric") or kind
            )  # fmt: skip
            self.alerts.labels(kind, str(rule), str(body.get("severity", ""))).inc()

    def judged(self, reports: Iterable[dict[str, Any]]) -> None:
        """Judged model-quality windows (``PerformanceDetector.take_reports``), in time order."""
        for report in reports:
            model, version = report["model_name"], report["model_version"]
            for figure, value in report.items():
                if isinstance(value, float):
                    self.model_quality.labels(model, version, figure).set(value)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Positions:
    """Where the worker's consumer is on each assigned input partition.

    faust's consumer keeps the committed offset (the next one to read, after a restart or a
    rebalance) and the last offset read per partition in ``_committed_offset`` and
    ``_read_offset``; aiokafka keeps the high watermark of the last fetch. Read here only, for
    faust-streaming 0.15 (pinned in pyproject.toml; tests/integration/test_worker_health.py).
    """

    def __init__(self, app: Any, inputs: Iterable[str]) -> None:
        self.app, self.inputs = app, set(inputs)

    def partitions(self) -> list[Any]:
        consumer = self.app.consumer
        return sorted(tp for tp in consumer.assignment() if tp.topic in self.inputs)

    def lags(self) -> Iterator[tuple[Any, int | None, int | None]]:
        """(tp, records after the committed offset, records after the last read) per partition;
        None until the partition's end is known."""
        consumer = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})
        read = getattr(consumer, "_read_offset", {})
        for tp in self.partitions():
            try:
                end = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - a partition being moved: its end is unknown
                end = None
            if end is None:
                yield tp, None, None
                continue
            done = committed.get(tp) or 0
            last = read.get(tp)
            yield tp, max(0, end - done), max(0, end - (done if last is None else last + 1))


class StateCollector:
    """Scrape-time metrics: lag per input partition, assignment, rebalances, the spool."""

    def __init__(self, positions: Positions, processors: Any) -> None:
        self.positions, self.processors = positions, processors

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        labels = ["topic", "partition"]
        lag = GaugeMetricFamily(
            "auditline_worker_consumer_lag", "Records after the group's committed offset, per "
            "input partition (what a restart would read again or has not read)", labels=labels,
        )  # fmt: skip
        unread = GaugeMetricFamily(
            "auditline_worker_unread", "Records not yet read, per input partition", labels=labels
        )
        for tp, behind, not_read in self.positions.lags():
            if behind is not None and not_read is not None:
                lag.add_metric([tp.topic, str(tp.partition)], behind)
                unread.add_metric([tp.topic, str(tp.partition)], not_read)
        yield lag
        yield unread
        yield GaugeMetricFamily(
            "auditline_worker_assigned_partitions", "Input partitions assigned to this worker",
            value=len(self.positions.partitions()),
        )  # fmt: skip
        yield CounterMetricFamily(
            "auditline_worker_rebalances", "Rebalances this worker took part in",
            value=getattr(self.positions.app, "rebalancing_count", 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "auditline_worker_held_events", "Audit events waiting for lineage not read yet",
            value=self.processors.held(),
        )  # fmt: skip
        producer = self.processors.alert_producer
        if producer is not None:  # the spool of the worker's alerts
            from auditline.producer.metrics import ProducerCollector

            yield from ProducerCollector(producer).collect()


class Readiness:
    """Ready: the broker answers (probed every ``PROBE_S``), the assignment is done, the tables
    recovered and no assigned input partition is more than ``READY_LAG`` records from its end."""

    def __init__(self, settings: AuditlineSettings, positions: Positions) -> None:
        self.positions = positions
        self.conf = settings.kafka.client_conf()
        self.broker, self.broker_reason = False, "the broker has not been asked yet"
        self.announced = False
        self.probed = 0.0

    def probe_now(self) -> None:
        """Blocking: the broker answers or not (run in a thread), as the alerts service asks."""
        self.probed = time.monotonic()
        try:
            require_broker(self.conf, PROBE_S)
        except UnavailableError as exc:
            self.broker, self.broker_reason = False, str(exc)
        else:
            self.broker, self.broker_reason = True, "ok"

    async def probe(self) -> None:
        await asyncio.to_thread(self.probe_now)

    def __call__(self) -> tuple[bool, str]:
        waiting = self.waiting_for()
        return waiting is None, waiting or "ok"

    def waiting_for(self) -> str | None:
        """Why the worker is not ready, or None."""
        app = self.positions.app
        if not self.broker:
            return self.broker_reason
        if getattr(app, "rebalancing", False) or not app.tables.recovery.completed.is_set():
            return "waiting for the group's assignment and the tables' recovery"
        return self._behind()  # a worker with no input partitions (more workers than
        # partitions) is ready: it holds the tables and takes partitions over when one dies

    def _behind(self) -> str | None:
        for tp, _, not_read in self.positions.lags():
            where = f"{tp.topic}[{tp.partition}]"
            if not_read is None:
                return f"waiting for the first fetch of {where}"
            if not_read > READY_LAG:
                return f"catching up: {not_read} records unread on {where}"
        return None


def free_port(host: str) -> int:
    """A port free on ``host`` now (for ``AUDITLINE_METRICS__PORT=0``)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def install(processors: Any, settings: AuditlineSettings, inputs: Sequence[str]) -> Readiness:
    """The ready log, and with a metrics port, faust's web server with the three pages."""
    app = processors.app
    positions = Positions(app, inputs)
    ready = Readiness(settings, positions)
    port = settings.metrics.port
    where = f"; metrics on http://{settings.metrics.host}:{port}/metrics" if port else ""
    consumes = ", ".join(inputs)

    async def check() -> None:
        if port is None and ready.announced:
            return  # without a metrics port only the ready log needs the probe
        if not ready.broker or time.monotonic() - ready.probed >= PROBE_S:
            await ready.probe()
        ok, _ = ready()
        if ok and not ready.announced:
            ready.announced = True
            print(
                f"worker: ready: {settings.kafka.bootstrap_servers} as group {app.conf.id}, "
                f"{len(positions.partitions())} partitions of {consumes}{where}",
                flush=True,
            )

    app.timer(1.0, name="auditline-readiness")(check)
    if port is None:
        return ready
    metrics: WorkerMetrics = processors.metrics
    metrics.registry.register(StateCollector(positions, processors))
    app.conf.web_tables_enabled = app.conf.web_router_enabled = False
    app.conf.web_stats_enabled = app.conf.web_graph_enabled = False

    @app.page("/metrics")  # type: ignore[untyped-decorator]
    async def scrape(view: Any, request: Any) -> Any:
        # a Response of aiohttp's own, as faust's Prometheus sensor does: faust's ``bytes``
        # refuses the exposition content type (it names a charset)
        headers = {"Content-Type": metrics.content_type}
        return Response(body=metrics.exposition(), headers=headers)

    @app.page("/healthz")  # type: ignore[untyped-decorator]
    async def healthz(view: Any, request: Any) -> Any:
        return view.text("ok\n")

    @app.page("/readyz")  # type: ignore[untyped-decorator]
    async def readyz(view: Any, request: Any) -> Any:
        ok, reason = ready()
        return view.text(f"{reason}\n", status=200 if ok else 503)

    return ready
