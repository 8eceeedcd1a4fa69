"""The sink: Kafka → ClickHouse with an exactly-once effect.

Per batch (up to ``batch_max_events`` messages or ``batch_max_wait_ms``):

1. decode; undecodable records go to the dead-letter topic with the reason, source topic,
   partition and offset in headers (produced and flushed before anything is committed);
2. drop events whose ``event_id`` the audit log already holds (a replay after a crash between
   insert and commit), and repeats within the batch;
3. insert derived rows (lineage, predictions, alerts) first and the audit-log rows last, so that
   an event present in the audit log has all its derived rows;
4. commit the consumer offsets, synchronously, only now: ClickHouse has the rows.

A crash anywhere replays from the last commit; step 2 makes the replay store nothing twice in
the audit log, and the derived tables are ReplacingMergeTree keyed by event id (read with FINAL
where exactness matters).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from auditline.catalogue import Catalogue
from auditline.codec import Codec, make_codec
from auditline.errors import DecodeError, SinkError
from auditline.settings import AuditlineSettings
from auditline.topics import consumer_lag, ensure_topics, with_logger

from .metrics import SinkMetrics
from .rows import COLUMNS, Located, rows_for
from .store import Store

DERIVED_FIRST = (
    "lineage_nodes",
    "lineage_edges",
    "predictions",
    "violations",
    "drift_alerts",
    "integrity_alerts",
    "audit_log",
)


class StoreWriter:
    """Exactly-once writes of decoded events: skip ids present, derived rows first, log last."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, located: list[Located]) -> tuple[int, int]:
        """Store what is new; returns (stored, skipped as already present or repeated)."""
        fresh = self._unseen(located)
        rows = rows_for(fresh)
        for table in DERIVED_FIRST:
            self.store.insert(table, COLUMNS[table], rows.tables.get(table, []))
        return len(fresh), len(located) - len(fresh)

    def _unseen(self, located: list[Located]) -> list[Located]:
        unique: dict[Any, Located] = {}
        for item in located:
            unique.setdefault(item.event.envelope.event_id, item)
        if not unique:
            return []
        times = [item.event.envelope.event_time for item in unique.values()]
        _, present = self.store.rows(
            f"SELECT event_id FROM `{self.store.database}`.audit_log "
            "WHERE event_time BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')} "
            "AND event_id IN {ids:Array(UUID)}",
            {
                "lo": min(times) - timedelta(milliseconds=1),
                "hi": max(times) + timedelta(milliseconds=1),
                "ids": list(unique),
            },
        )
        seen = {row[0] for row in present}
        return [item for key, item in unique.items() if key not in seen]


@dataclass
class SinkStats:
    consumed: int = 0
    stored: int = 0
    skipped_present: int = 0
    dead_lettered: int = 0
    batches: int = 0


class Sink:
    def __init__(
        self,
        settings: AuditlineSettings,
        store: Store,
        codec: Codec | None = None,
        metrics: SinkMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.lag: dict[tuple[str, int], int] = {}
        self.catalogue = Catalogue(settings.topic_prefix)
        self.codec = codec or make_codec(settings, self.catalogue)
        conf = settings.kafka.client_conf()
        ensure_topics(conf, [*self.catalogue.topics, self.catalogue.dead_letter_topic])
        self.consumer = Consumer(
            {
                **with_logger(conf),
                "group.id": settings.sink.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "topic.metadata.refresh.interval.ms": 5000,
                # static membership: a sink restarted after a crash resumes its partitions without
                # waiting for the dead member's session to time out
                "group.instance.id": settings.sink.instance_id,
                "session.timeout.ms": 30000,
            }
        )
        self.assigned = threading.Event()
        self.consumer.subscribe(
            list(self.catalogue.topics), on_assign=lambda consumer, parts: self.assigned.set()
        )
        self.dead_letters = Producer(
            {**with_logger(conf), "acks": "all", "enable.idempotence": True}
        )
        self.writer = StoreWriter(store)
        self.stats = SinkStats()

    def run(
        self, stop: threading.Event | None = None, idle_exit_s: float | None = None
    ) -> SinkStats:
        """Consume until ``stop`` is set (or nothing arrived for ``idle_exit_s``)."""
        stop = stop or threading.Event()
        idle_since = time.monotonic()
        while not stop.is_set():
            if self.step() or not self.assigned.is_set():
                idle_since = time.monotonic()  # idle time counts once partitions are assigned
            elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                break
        return self.stats

    def step(self) -> int:
        """One batch: consume, decode, insert, commit. Returns the messages handled."""
        sink = self.settings.sink
        messages = self.consumer.consume(sink.batch_max_events, sink.batch_max_wait_ms / 1000)
        messages = [m for m in messages if not _ignorable(m)]
        if not messages:
            self._observe_lag()
            return 0
        started = time.perf_counter()
        before = (self.stats.stored, self.stats.skipped_present, self.stats.dead_lettered)
        self.process(messages)
        self.consumer.commit(offsets=_next_offsets(messages), asynchronous=False)
        self.stats.batches += 1
        if self.metrics is not None:
            self._observe(messages, before, time.perf_counter() - started)
        return len(messages)

    def _observe(self, messages: list[Message], before: tuple[int, int, int], took: float) -> None:
        assert self.metrics is not None
        for message in messages:
            self.metrics.consumed.labels(message.topic() or "").inc()
        stored, skipped, dead = before
        self.metrics.stored.inc(self.stats.stored - stored)
        self.metrics.skipped.inc(self.stats.skipped_present - skipped)
        self.metrics.dead_letters.inc(self.stats.dead_lettered - dead)
        self.metrics.batch_seconds.observe(took)
        self._observe_lag()

    def _observe_lag(self) -> None:
        self.lag.update(consumer_lag(self.consumer))
        if self.metrics is not None:
            for (topic, partition), lag in self.lag.items():
                self.metrics.lag.labels(topic, str(partition)).set(lag)

    def process(self, messages: list[Message]) -> None:
        located: list[Located] = []
        for message in messages:
            error = message.error()
            if error is not None:
                raise SinkError(f"consume failed: {error}")
            topic, partition, offset = _coordinates(message)
            try:
                event = self.codec.decode(message.value() or b"")
            except DecodeError as exc:
                self._dead_letter(message, str(exc))
                continue
            located.append(Located(event, topic, partition, offset))
        self.stats.consumed += len(messages)
        stored, skipped = self.writer.write(located)
        if self.stats.dead_lettered:
            remaining = self.dead_letters.flush(30)
            if remaining:
                raise SinkError(f"{remaining} dead letters not acknowledged: not committing")
        self.stats.stored += stored
        self.stats.skipped_present += skipped

    def _dead_letter(self, message: Message, reason: str) -> None:
        topic, partition, offset = _coordinates(message)
        self.dead_letters.produce(
            self.catalogue.dead_letter_topic,
            message.value(),
            message.key(),
            headers=[
                ("reason", reason.encode()),
                ("source_topic", topic.encode()),
                ("source_partition", str(partition).encode()),
                ("source_offset", str(offset).encode()),
            ],
        )
        self.dead_letters.poll(0)
        self.stats.dead_lettered += 1

    def close(self) -> None:
        self.dead_letters.flush(30)
        self.consumer.close()


def _coordinates(message: Message) -> tuple[str, int, int]:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise SinkError("a consumed message lacks topic, partition or offset")
    return topic, partition, offset


def _ignorable(message: Message) -> bool:
    error = message.error()
    return error is not None and error.code() in (
        KafkaError._PARTITION_EOF,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    )


def _next_offsets(messages: Iterable[Message]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        topic, partition, offset = _coordinates(m)
        last[(topic, partition)] = max(last.get((topic, partition), -1), offset)
    return [TopicPartition(topic, part, offset + 1) for (topic, part), offset in last.items()]
