"""Sink throughput into the embedded engine, beside a raw consume+decode+insert in one run.

raw  = confluent-kafka consume, codec.decode, audit-log rows, one columnar insert per batch
       into a plain MergeTree table (no dedup lookup, no derived tables, no offset commits)
sink = auditline's Sink: the same plus the exactly-once lookup, lineage/prediction rows and
       synchronous offset commits after each insert
*_cpu_us_per_event = CPU time of this process (the loop and the embedded engine's threads) per
       event, from the first batch

Starts a local Kafka the way the tests do (or uses AUDITLINE_TEST_KAFKA); ends with one JSON line.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from _report import report
from auditline.sinks.migrate import migrate
from auditline.sinks.rows import AUDIT_COLUMNS, Located, audit_row
from auditline.sinks.store import Store, connect
from auditline.sinks.writer import Sink
from confluent_kafka import Consumer

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import _bodies
from auditline.events import Prediction
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from auditline.testing.kafka_broker import LocalKafka

N = 40_000
BATCH = 5000


def produce(settings: AuditlineSettings) -> None:
    body = next(b for m, b in _bodies() if m is Prediction)
    with AuditProducer(settings) as producer:
        for _ in range(N // 1000):
            producer.emit_many(Prediction, [body] * 1000)
        assert producer.flush(120)


def raw(settings: AuditlineSettings, store: Store) -> tuple[float, float]:
    catalogue = Catalogue(settings.topic_prefix)
    codec = SingleObjectCodec(catalogue)
    store.command(
        f"CREATE TABLE {store.database}.raw_log AS {store.database}.audit_log ENGINE = MergeTree "
        "ORDER BY (kind, event_time, event_id)"
    )
    consumer = Consumer({**settings.kafka.client_conf(), "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([catalogue.for_model(Prediction).topic])
    done, start, cpu = 0, None, 0.0
    while done < N:
        messages = [m for m in consumer.consume(BATCH, 1.0) if m.error() is None]
        if not messages:
            continue
        start = start or time.perf_counter()
        began = time.process_time()
        rows = [
            audit_row(Located(codec.decode(m.value()), m.topic(), m.partition(), m.offset()))
            for m in messages
        ]
        store.insert("raw_log", AUDIT_COLUMNS, rows)
        done += len(messages)
        cpu += time.process_time() - began
    consumer.close()
    return N / (time.perf_counter() - (start or time.perf_counter())), cpu / N * 1e6


def sink(settings: AuditlineSettings, store: Store) -> tuple[float, float]:
    """Events/s from the first batch on, and CPU µs per event (this process: the sink and the
    embedded engine's threads)."""
    worker = Sink(settings, store)
    start, cpu = None, 0.0
    while worker.stats.stored < N:
        began = time.process_time()
        if worker.step() and start is None:
            start = time.perf_counter()
        cpu += time.process_time() - began
    worker.close()
    return N / (time.perf_counter() - (start or time.perf_counter())), cpu / N * 1e6


def main() -> None:
    with ExitStack() as stack:
        external = os.environ.get("AUDITLINE_TEST_KAFKA")
        bootstrap = external or stack.enter_context(LocalKafka()).bootstrap
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = AuditlineSettings(
            kafka={"bootstrap_servers": bootstrap}, topic_prefix=f"bench{int(time.time())}",
            producer={"service": "bench", "instance": "b1"}, spool={"path": str(tmp / "spool")},
            clickhouse={"dsn": f"chdb://{tmp / 'engine'}", "database": "bench"},
            sink={"group_id": uuid.uuid4().hex, "batch_max_events": BATCH},
        )  # fmt: skip
        produce(settings)
        store = connect(settings.clickhouse)
        migrate(store)
        raw_eps, raw_cpu = raw(settings, store)
        sink_eps, sink_cpu = sink(settings, store)
        figures = {"raw_eps": raw_eps, "raw_cpu_us_per_event": raw_cpu, "sink_eps": sink_eps,
                   "sink_cpu_us_per_event": sink_cpu}  # fmt: skip
        _, rows = store.rows("SELECT count(), uniqExact(event_id) FROM bench.audit_log")
        figures["stored"], figures["unique"] = rows[0]
    figures["ratio"] = figures["sink_eps"] / figures["raw_eps"]
    figures["cpu_ratio"] = raw_cpu / sink_cpu
    report("sink", figures, events=N)


if __name__ == "__main__":
    main()
