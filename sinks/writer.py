"""The sink: Kafka → ClickHouse with an exactly-once effect.

Per batch (up to ``batch_max_events`` messages or ``batch_max_wait_ms``):

1. decode (``records.py``: the codec's trusted decode, models checked as validation checks them);
   undecodable records go to the dead-letter topic with the reason, source topic, partition and
   offset in headers (produced and flushed before anything is committed);
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
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import (
    Consumer,
    Message,
    Producer,
    TopicPartition,
)

from auditline.catalogue import Catalogue
from auditline.codec import Codec, make_codec
from auditline.collector import gc_deferred
from auditline.errors import DecodeError, SinkError
from auditline.events import Event
from auditline.settings import AuditlineSettings
from auditline.topics import (
    consumer_lag,
    coordinates,
    ensure_topics,
    ignorable,
    with_logger,
)

from .metrics import SinkMetrics
from .records import decoder_for
from .rows import COLUMNS, Item, rows_for
from .store import Store

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DERIVED_FIRST = (
    "lineage_nodes",
    "lineage_edges",
    "column_lineage",
    "predictions",
    "outcomes",
    "violations",
    "drift_alerts",
    "quality_alerts",
    "performance_alerts",
    "integrity_alerts",
    "audit_log",
)
UNIQUE_BY_SORTING_KEY = {"audit_log", "predictions"}
"""Tables whose rows in one insert never share a sorting key (one audit row per new event id, one
prediction per event id and row): the insert need not look for rows to replace, as
ReplacingMergeTree does by default (``optimize_on_insert``, a third of their insert's cost)."""


class StoreWriter:
    """Exactly-once writes of decoded events: skip ids present, derived rows first, log last.

    Only events that may be stored are looked up by id: an event newer than the newest stored
    event of its kind cannot be there (the newest is read from the end of the audit log's sort
    order, whatever its size). In-order streams then look up only the events at the boundary;
    a replay, a late event or a partition behind the others, every event at or before it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, items: Sequence[Item]) -> tuple[int, int]:
        """Store what is new; returns (stored, skipped as already present or repeated)."""
        fresh = self._unseen(items)
        rows = rows_for(fresh)
        for table in DERIVED_FIRST:
            settings = {"optimize_on_insert": 0} if table in UNIQUE_BY_SORTING_KEY else {}
            self.store.insert(table, COLUMNS[table], rows.tables.get(table, []), **settings)
        return len(fresh), len(items) - len(fresh)

    def _unseen(self, items: Sequence[Item]) -> list[Item]:
        unique: dict[int, Item] = {}  # by the id's 128 bits: a UUID hashes in Python, slowly
        for item in items:
            unique.setdefault(item.event.envelope.event_id.int, item)
        kinds = _by_kind(unique.values())
        newest = self._newest({kind.__name__ for kind in kinds})
        maybe: dict[Any, datetime] = {}  # the events that may be stored, with their times
        for kind, group in kinds.items():
            last = newest.get(kind.__name__)
            if last is not None:
                for item in group:
                    if (env := item.event.envelope).event_time <= last:
                        maybe[env.event_id] = env.event_time
        if not maybe:
            return list(unique.values())
        seen = self._present(maybe)
        return [item for item in unique.values() if item.event.envelope.event_id not in seen]

    def _newest(self, kinds: set[str]) -> dict[str, datetime]:
        """The newest stored event time of each of these kinds that has any: the last row of
        the kind in the audit log's sort order (kind, event_time, …), read in reverse."""
        if not kinds:
            return {}
        params = {f"k{i}": kind for i, kind in enumerate(sorted(kinds))}
        _, rows = self.store.rows(
            " UNION ALL ".join(
                f"(SELECT kind, toUnixTimestamp64Milli(event_time) FROM "
                f"`{self.store.database}`.audit_log WHERE kind = {{{name}:String}} "
                "ORDER BY event_time DESC LIMIT 1)"
                for name in params
            ),
            params,
        )
        return {kind: _EPOCH + timedelta(milliseconds=ms) for kind, ms in rows}

    def _present(self, times: dict[Any, datetime]) -> set[Any]:
        """Which of these event ids (with their event times) the audit log holds."""
        _, present = self.store.rows(
            f"SELECT event_id FROM `{self.store.database}`.audit_log "
            "WHERE event_time BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')} "
            "AND event_id IN {ids:Array(UUID)}",
            {
                "lo": min(times.values()) - timedelta(milliseconds=1),
                "hi": max(times.values()) + timedelta(milliseconds=1),
                "ids": list(times),
            },
        )
        return {row[0] for row in present}


def _by_kind(items: Iterable[Item]) -> dict[type[Event], list[Item]]:
    """Items grouped by their kind (``rows.kind_of``, inline: it runs for every event)."""
    groups: defaultdict[type[Event], list[Item]] = defaultdict(list)
    for item in items:
        groups[type(item.event)].append(item)
    return groups


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
        self.decoder = decoder_for(self.codec)
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
        with gc_deferred():
            return self._batch()

    def _batch(self) -> int:
        sink = self.settings.sink
        messages = self.consumer.consume(sink.batch_max_events, sink.batch_max_wait_ms / 1000)
        messages = [m for m in messages if not ignorable(m)]
        if not messages:
            self._observe_lag()
            return 0
        started = time.perf_counter()
        before = (self.stats.stored, self.stats.skipped_present, self.stats.dead_lettered)
        offsets = self.process(messages)
        self.consumer.commit(offsets=offsets, asynchronous=False)
        self.stats.batches += 1
        if self.metrics is not None:
            self._observe(messages, before, time.perf_counter() - started)
        return len(messages)

    def _observe(self, messages: list[Message], before: tuple[int, int, int], took: float) -> None:
        assert self.metrics is not None
        for topic, count in Counter(message.topic() or "" for message in messages).items():
            self.metrics.consumed.labels(topic).inc(count)
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

    def process(self, messages: list[Message]) -> list[TopicPartition]:
        """Store a batch's events (the dead letters acknowledged); returns the offsets to commit."""
        items, offsets = self._decoded(messages)
        self.stats.consumed += len(messages)
        stored, skipped = self.writer.write(items)
        if self.stats.dead_lettered:
            remaining = self.dead_letters.flush(30)
            if remaining:
                raise SinkError(f"{remaining} dead letters not acknowledged: not committing")
        self.stats.stored += stored
        self.stats.skipped_present += skipped
        return offsets

    def _decoded(self, messages: list[Message]) -> tuple[list[Item], list[TopicPartition]]:
        """The decoded events with their coordinates, undecodable records dead-lettered, and the
        offsets to commit once they are stored: each partition's last, plus one (a partition's
        messages arrive in offset order). One pass: per message, only what must be per message."""
        decode, items, last = self.decoder.item, list[Item](), dict[tuple[str, int], int]()
        append = items.append
        for message in messages:
            if message.error() is not None:
                raise SinkError(f"consume failed: {message.error()}")
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or offset is None:
                raise SinkError("a consumed message lacks topic, partition or offset")
            try:
                append(decode(message.value() or b"", topic, partition, offset))
            except DecodeError as exc:
                self._dead_letter(message, str(exc))
            last[topic, partition] = offset
        return items, [TopicPartition(t, p, offset + 1) for (t, p), offset in last.items()]

    def _dead_letter(self, message: Message, reason: str) -> None:
        topic, partition, offset = coordinates(message)
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
