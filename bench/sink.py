"""Sink throughput into the embedded engine, beside a raw consume+decode+insert in one run.

raw  = confluent-kafka consume, the sink's decode (``sinks.records.decoder_for``), audit-log
       rows, one insert per batch (``Store.insert``, as the sink's) into a plain MergeTree table
       (no dedup lookup, no derived tables, no offset commits), with the sink's
       garbage-collection policy (none inside a batch)
sink = auditline's Sink: the same plus the exactly-once lookup, lineage/prediction rows and
       synchronous offset commits after each insert
*_eps = events in full batches after the first / time from the end of the first batch to the end
       of the last full one (the first waits for the group's assignment; the sink's last, partial
       batch, the producer's checkpoint, waits for batch_max_wait_ms in vain)
*_cpu_us_per_event = CPU time of this process (consuming, the loop and the embedded engine's
       threads) per event, in all batches; raw_log's merges are stopped once the raw loop ends,
       so that the engine does not merge the raw parts on the sink's time
Both read the same N predictions from the start of their topic; asserted: each table holds the
N events once, and the same event ids (the sink also stores the producer's checkpoints).

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
from auditline.sinks.records import Decoder, decoder_for
from auditline.sinks.rows import AUDIT_COLUMNS, audit_row
from auditline.sinks.store import Store, connect
from auditline.sinks.writer import Sink
from confluent_kafka import Consumer

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.collector import gc_deferred
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
    """Events/s (see above) and CPU µs per event of the raw loop."""
    catalogue = Catalogue(settings.topic_prefix)
    decoder = decoder_for(SingleObjectCodec(catalogue))
    store.command(
        f"CREATE TABLE {store.database}.raw_log AS {store.database}.audit_log ENGINE = MergeTree "
        "ORDER BY (kind, event_time, event_id)"
    )
    consumer = Consumer({**settings.kafka.client_conf(), "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([catalogue.for_model(Prediction).topic])
    done, cpu, clock = 0, 0.0, Clock()
    while done < N:
        began = time.process_time()
        with gc_deferred():  # as the sink does
            handled = raw_batch(consumer, decoder, store)
        if handled:
            done += handled
            cpu += time.process_time() - began
            clock.batch(handled)
    consumer.close()
    store.command(f"SYSTEM STOP MERGES {store.database}.raw_log")
    return clock.eps(), cpu / N * 1e6


def raw_batch(consumer: Consumer, decoder: Decoder, store: Store) -> int:
    messages = [m for m in consumer.consume(BATCH, 1.0) if m.error() is None]
    rows = [
        audit_row(decoder.item(m.value(), m.topic(), m.partition(), m.offset())) for m in messages
    ]
    store.insert("raw_log", AUDIT_COLUMNS, rows)
    return len(messages)


def sink(settings: AuditlineSettings, store: Store) -> tuple[float, float]:
    """Events/s (see above) and CPU µs per event of the sink."""
    worker, cpu, clock = Sink(settings, store), 0.0, Clock()
    while True:
        began = time.process_time()
        if handled := worker.step():
            cpu += time.process_time() - began
            clock.batch(handled)
        elif worker.stats.stored >= N:  # then one empty batch: the checkpoints are in too
            break
    worker.close()
    return clock.eps(), cpu / N * 1e6


class Clock:
    """Events per second in the full batches after the first."""

    def __init__(self) -> None:
        self.first_end, self.end, self.after_first = 0.0, 0.0, 0

    def batch(self, events: int) -> None:
        if events < BATCH:
            return
        self.end = time.perf_counter()
        if self.first_end:
            self.after_first += events
        else:
            self.first_end = self.end

    def eps(self) -> float:
        assert self.after_first, "no full batch after the first"
        return self.after_first / (self.end - self.first_end)


def check(store: Store) -> dict[str, float]:
    """Both stored the same N predictions once each."""
    db = store.database
    _, [(sink_n, sink_ids, raw_n, raw_ids, missing)] = store.rows(
        f"SELECT (SELECT count() FROM {db}.audit_log WHERE kind = 'Prediction'), "
        f"(SELECT uniqExact(event_id) FROM {db}.audit_log WHERE kind = 'Prediction'), "
        f"(SELECT count() FROM {db}.raw_log), (SELECT uniqExact(event_id) FROM {db}.raw_log), "
        f"(SELECT count() FROM {db}.raw_log WHERE event_id NOT IN "
        f"(SELECT event_id FROM {db}.audit_log))"
    )
    assert sink_n == sink_ids == raw_n == raw_ids == N and missing == 0, (
        sink_n, sink_ids, raw_n, raw_ids, missing,
    )  # fmt: skip
    return {"stored": sink_n, "unique": sink_ids}


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
                   "sink_cpu_us_per_event": sink_cpu, **check(store)}  # fmt: skip
    figures["ratio"] = figures["sink_eps"] / figures["raw_eps"]
    figures["cpu_ratio"] = raw_cpu / sink_cpu
    report("sink", figures, events=N)


if __name__ == "__main__":
    main()
