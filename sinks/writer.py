"""The sink: Kafka → ClickHouse with an exactly-once effect.

Per batch (up to ``batch_max_events`` messages or ``batch_max_wait_ms``):

1. decode (``records.py``: the codec's trusted decode, models checked as validation checks them);
   undecodable records go to the dead-letter topic with the reason, source topic, partition and
   offset in headers (produced and flushed before anything is committed);
2. drop events whose ``event_id`` the audit log already holds (a replay after a crash between
   insert and commit), and repeats within the batch;
3. insert derived rows (lineage, predictions, alerts) first and the audit-log rows last, so that
   an event present in the audit log has all its derived rows;
4. commit the consumer offsets only now: ClickHouse has the rows. The commit is synchronous, on
   the sink's commit thread, so that its round trip overlaps the next batch's consume, decode and
   exactly-once lookup; nothing of the next batch is inserted before the broker has taken it (a
   failed commit stops the sink there, as if it had failed in place).

A crash anywhere replays from the last commit; step 2 makes the replay store nothing twice in
the audit log, and the derived tables are ReplacingMergeTree keyed by event id (read with FINAL
where exactness matters). Not covered by step 2: a sink fenced out of its group while it writes
(a replacement started with its ``instance_id``, or a stall past the poll interval) and the
partitions' new owner can look up the same batch before either inserts it, and both store it;
the audit log is a ReplacingMergeTree keyed by the event id as well, so such copies go at its
next merge, and ``FINAL`` reads them once before that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from auditline.catalogue import Catalogue
from auditline.codec import Codec, make_codec
from auditline.collector import gc_deferred
from auditline.errors import DecodeError, SinkError
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
from .rows import AUDIT_ID, AUDIT_KIND, AUDIT_TIME, COLUMNS, Item, rows_for
from .store import Store

log = logging.getLogger(__name__)
_MS = timedelta(milliseconds=1)
Ranges = dict[str, tuple[datetime, datetime]]
"""Each kind's first and last event time (in a batch)."""
LOOKUP_ROWS_PER_EVENT = 2
"""The most stored rows the exactly-once lookup reads per event of a batch before it looks up
the batch's ids instead (see ``StoreWriter``)."""
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

    An event already stored has its kind and time in the audit log, so one query per batch finds
    every one of them: the ids stored in each kind's time range of the batch, which the log's
    sort order (kind, event_time, …) reads alone, whatever the log's size. In-order streams find
    the few events at the boundary, a replay its own events. Where a range holds more than
    ``LOOKUP_ROWS_PER_EVENT`` times the batch's events (a partition far behind the others), the
    batch's own ids are looked up instead.

    The rows are built for the whole batch first, and the lookup reads the ids, times and kinds
    from its audit rows: a batch with nothing to skip (the usual one) is mapped once; one with
    events to skip is mapped again without them.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(
        self, items: Sequence[Item], before_insert: Callable[[], None] = lambda: None
    ) -> tuple[int, int]:
        """Store what is new; returns (stored, skipped as already present or repeated).
        ``before_insert`` is called once what to insert is known, before the first insert."""
        rows = rows_for(items)
        skip = self._skipped(rows.tables.get("audit_log", []))
        if skip:
            items = [item for i, item in enumerate(items) if i not in skip]
            rows = rows_for(items)
        before_insert()
        for table in DERIVED_FIRST:
            settings = {"optimize_on_insert": 0} if table in UNIQUE_BY_SORTING_KEY else {}
            self.store.insert(table, COLUMNS[table], rows.tables.get(table, []), **settings)
        return len(items), len(skip)

    def _skipped(self, audit: Sequence[tuple[Any, ...]]) -> set[int]:
        """The indexes of the events not to store: repeats of an id earlier in the batch and
        ids the audit log holds (see above)."""
        ids = [row[AUDIT_ID].int for row in audit]  # its 128 bits: a UUID hashes in Python
        skip: set[int] = set()
        if len(set(ids)) != len(ids):
            first: dict[int, int] = {}
            for i, key in enumerate(ids):
                if first.setdefault(key, i) != i:
                    skip.add(i)
        if not audit:
            return skip
        stored = self._stored_in(_ranges(audit), LOOKUP_ROWS_PER_EVENT * len(audit))
        if stored is None:  # too many in the ranges: the batch's ids instead
            stored = self._present({row[AUDIT_ID]: row[AUDIT_TIME] for row in audit})
        if stored:
            skip.update(i for i, key in enumerate(ids) if key in stored)
        return skip

    def _stored_in(self, ranges: Ranges, limit: int) -> set[int] | None:
        """The ids (as integers) the audit log holds with these kinds and event times (each
        kind's first and last time, a millisecond wider), or None when more than ``limit``."""
        params: dict[str, Any] = {"limit": limit + 1}
        conditions = []
        for i, (kind, (lo, hi)) in enumerate(sorted(ranges.items())):
            params.update({f"k{i}": kind, f"lo{i}": lo - _MS, f"hi{i}": hi + _MS})
            conditions.append(
                f"(kind = {{k{i}:String}} AND event_time BETWEEN "
                f"{{lo{i}:DateTime64(3, 'UTC')}} AND {{hi{i}:DateTime64(3, 'UTC')}})"
            )
        _, rows = self.store.rows(
            f"SELECT event_id FROM `{self.store.database}`.audit_log "
            f"WHERE {' OR '.join(conditions)} LIMIT {{limit:UInt64}}",
            params,
        )
        return None if len(rows) > limit else {row[0].int for row in rows}

    def _present(self, times: dict[Any, datetime]) -> set[int]:
        """Which of these event ids (with their event times) the audit log holds, as integers."""
        _, present = self.store.rows(
            f"SELECT event_id FROM `{self.store.database}`.audit_log "
            "WHERE event_time BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')} "
            "AND event_id IN {ids:Array(UUID)}",
            {
                "lo": min(times.values()) - _MS,
                "hi": max(times.values()) + _MS,
                "ids": list(times),
            },
        )
        return {row[0].int for row in present}


def _ranges(audit: Sequence[tuple[Any, ...]]) -> Ranges:
    """Each kind's first and last event time in these audit rows (a batch of one kind, the
    usual one, in two C-level passes)."""
    kinds = {row[AUDIT_KIND] for row in audit}
    if len(kinds) == 1:
        times = [row[AUDIT_TIME] for row in audit]
        return {kinds.pop(): (min(times), max(times))}
    by_kind: defaultdict[str, list[datetime]] = defaultdict(list)
    for row in audit:
        by_kind[row[AUDIT_KIND]].append(row[AUDIT_TIME])
    return {kind: (min(times), max(times)) for kind, times in by_kind.items()}


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
        self._committer = futures.ThreadPoolExecutor(1, thread_name_prefix="sink-commit")
        self._commit: futures.Future[Any] | None = None  # the previous batch's, in flight
        self.consumer.subscribe(
            list(self.catalogue.topics),
            on_assign=lambda consumer, parts: self.assigned.set(),
            on_revoke=self._revoking,
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
        messages = [m for m in messages if m.error() is None or not ignorable(m)]
        if not messages:
            self._committed()
            self._observe_lag()
            return 0
        started = time.perf_counter()
        before = (self.stats.stored, self.stats.skipped_present, self.stats.dead_lettered)
        offsets = self.process(messages)
        self._committed()  # (awaited before the inserts already: one commit in flight at most)
        self._commit = self._committer.submit(self.consumer.commit, offsets=offsets,
                                              asynchronous=False)  # fmt: skip
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
        stored, skipped = self.writer.write(items, before_insert=self._committed)
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

    def _committed(self) -> None:
        """Wait for the commit in flight (the previous batch's), raising its failure."""
        commit, self._commit = self._commit, None
        if commit is None:
            return
        try:
            commit.result()
        except KafkaException as exc:
            raise SinkError(
                f"committing the consumer offsets failed ({exc}): the sink stops; restarted, it "
                "reads the batches since the last commit again and skips what they stored"
            ) from exc

    def _revoking(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions are taken away (inside ``consume``): the commit in flight ends first."""
        if self._commit is not None:
            futures.wait([self._commit])

    def close(self) -> None:
        """Flush the dead letters, end the commit in flight, leave the group."""
        self.dead_letters.flush(30)
        try:
            self._committed()
        except SinkError as exc:  # what it covers is read again after a restart and skipped
            log.warning("%s", exc)
        finally:
            self._committer.shutdown()
            self.consumer.close()
