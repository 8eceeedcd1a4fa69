"""Alerts from the alert topics, decoded, with their Kafka positions (confluent-kafka).

Two ways to read: a **subscription** consumes as its own consumer group and commits an alert's
offset only once the caller has handled it (``commit``: at-least-once delivery, a restart
resumes after the last handled alert); a **reader** is assigned explicit start positions and
commits nothing (``alerts tail``; SSE clients, which ``resume`` from ``Last-Event-ID``).

``lag`` counts from what is committed, not from the read position: a subscription reads a batch
and then handles it (a webhook retries a failing receiver meanwhile), so its position runs ahead
of the alerts it has handled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from auditline.alerting.view import AlertView, Position
from auditline.catalogue import Catalogue
from auditline.codec import make_codec
from auditline.errors import DecodeError, UnavailableError, UnknownSchemaError
from auditline.events import (
    DataQualityAlert,
    DriftAlert,
    IntegrityAlert,
    PerformanceAlert,
    PolicyViolation,
)
from auditline.settings import AuditlineSettings
from auditline.topics import consumer_lag, ensure_topics, require_broker, with_logger

log = logging.getLogger(__name__)
START = {"beginning": OFFSET_BEGINNING, "end": OFFSET_END}


def alert_topics(catalogue: Catalogue) -> list[str]:
    # appended, never inserted: an SSE cursor names a topic by its index in this list
    kinds = (PolicyViolation, DriftAlert, DataQualityAlert, IntegrityAlert, PerformanceAlert)
    return [catalogue.for_model(m).topic for m in kinds]


class AlertSource:
    def __init__(self, settings: AuditlineSettings, consumer: Consumer) -> None:
        self.catalogue = Catalogue(settings.topic_prefix)
        self.codec = make_codec(settings, self.catalogue)
        self.consumer = consumer
        self.topics = alert_topics(self.catalogue)
        # per partition, the first offset not yet committed: set by ``commit``, or by the first
        # record read since the partition was assigned (the committed offset a run resumes at)
        self._unhandled: dict[tuple[str, int], int] = {}

    @classmethod
    def subscription(
        cls, settings: AuditlineSettings, group: str, start: str = "latest"
    ) -> AlertSource:
        """Its own consumer group; a new group starts at ``start`` (latest: from now on)."""
        source = cls(settings, _consumer(settings, group, {"auto.offset.reset": start}))
        source.consumer.subscribe(source.topics, on_assign=source._assigned)
        return source

    def _assigned(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """A partition (re)assigned starts afresh: another member may have committed since."""
        for tp in partitions:
            self._unhandled.pop((tp.topic, tp.partition), None)

    @classmethod
    def reader(
        cls,
        settings: AuditlineSettings,
        start: str = "end",
        since_ms: int | None = None,
    ) -> AlertSource:
        """Assigned, no group commits: from the ``start`` (beginning | end) or from ``since_ms``
        (``resume`` moves it to explicit positions)."""
        # a position removed by retention resumes at the oldest alert kept, never at the end
        reset = {"auto.offset.reset": "earliest"}
        source = cls(settings, _consumer(settings, "auditline-alerts-reader", reset))
        parts = source.partitions()
        if since_ms is not None:
            found = source.consumer.offsets_for_times(
                [TopicPartition(t, p, since_ms) for t, p in parts], timeout=10
            )
            source.consumer.assign(
                [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in found]
            )
        else:
            source.consumer.assign([TopicPartition(t, p, START[start]) for t, p in parts])
        return source

    def resume(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Read from ``positions`` (next offset per topic partition); a partition they do not
        name is new since they were taken, so it is read from its start."""
        self.consumer.assign(
            [
                TopicPartition(t, p, positions.get((t, p), OFFSET_BEGINNING))
                for t, p in self.partitions()
            ]
        )

    def partitions(self) -> list[tuple[str, int]]:
        metadata = self.consumer.list_topics(timeout=10).topics
        return [
            (topic, partition)
            for topic in self.topics
            if topic in metadata
            for partition in sorted(metadata[topic].partitions)
        ]

    def poll(self, timeout: float = 0.5, max_records: int = 500) -> list[AlertView]:
        """The next alerts (possibly none); records that are not alerts are skipped. Returns as
        soon as one record is there (``consume`` alone would wait for a full batch or the
        timeout), with whatever else is already fetched."""
        try:
            messages = self.consumer.consume(max_records, 0)
            if not messages:
                first = self.consumer.poll(timeout)
                if first is not None:
                    messages = [first, *self.consumer.consume(max_records - 1, 0)]
        except KafkaException as exc:
            raise UnavailableError(f"reading the alert topics failed: {exc}") from exc
        for message in messages:
            if message.error() is None:
                key = (message.topic() or "", message.partition() or 0)
                self._unhandled.setdefault(key, message.offset() or 0)
        return [view for m in messages if (view := self._view(m)) is not None]

    def _view(self, message: Message) -> AlertView | None:
        if message.error() is not None:
            return None
        position = Position(message.topic() or "", message.partition() or 0, message.offset() or 0)
        try:
            event = self.codec.decode(message.value() or b"")
        except UnknownSchemaError as exc:  # e.g. the registry away: stop, never skip past it
            raise UnavailableError(f"cannot decode the alert at {position}: {exc}") from exc
        except DecodeError as exc:  # bad bytes: the sink dead-letters them
            log.warning("skipped an undecodable record at %s: %s", position, exc)
            return None
        return AlertView.of(event, position)

    def commit(self, alerts: Iterable[AlertView], *, wait: bool = True) -> None:
        """Commit past ``alerts`` (handled). ``wait``: synchronously, so a crash after it never
        repeats them; else queued (librdkafka sends commits in order; a crash may repeat them)."""
        nexts: dict[tuple[str, int], int] = {}
        for alert in alerts:
            if alert.position is not None:
                key = (alert.position.topic, alert.position.partition)
                nexts[key] = max(nexts.get(key, 0), alert.position.offset + 1)
        if nexts:
            offsets = [TopicPartition(t, p, o) for (t, p), o in nexts.items()]
            try:
                if wait:
                    self.consumer.commit(offsets=offsets, asynchronous=False)
                else:
                    self.consumer.commit(offsets=offsets, asynchronous=True)
            except KafkaException as exc:
                raise UnavailableError(f"committing alert offsets failed: {exc}") from exc
            self._unhandled.update(nexts)

    def lag(self) -> dict[tuple[str, int], int]:
        """Alerts not yet handled per assigned partition: the high watermark minus the first
        offset not committed (minus the read position where nothing was read or committed yet);
        cached watermarks, no request to the broker."""
        found = consumer_lag(self.consumer)
        for key in found:
            if key in self._unhandled:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
                found[key] = max(0, high - self._unhandled[key])
        return found

    def close(self) -> None:
        self.consumer.close()


def _consumer(settings: AuditlineSettings, group: str, extra: dict[str, str]) -> Consumer:
    conf = settings.kafka.client_conf()
    require_broker(conf, settings.kafka.connect_timeout_s)
    ensure_topics(conf, alert_topics(Catalogue(settings.topic_prefix)))
    return Consumer(
        {
            **with_logger(conf),
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "topic.metadata.refresh.interval.ms": 5000,
            # a webhook retrying with backoff polls rarely; past this the group would drop it
            "max.poll.interval.ms": 900_000,
            **extra,
        }
    )
