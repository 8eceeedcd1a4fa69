"""Kafka transport over confluent-kafka (the only module of the producer that imports it).

Delivery guarantees decided here: ``acks=all`` and idempotence on (no duplicates from retries,
order kept per partition), ``message.timeout.ms=0`` (librdkafka retries for ever instead of
failing messages while the broker is down: the spool bounds how much waits), murmur2
partitioning (the same key lands on the same partition as with Java clients).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from auditline.errors import ConfigError
from auditline.producer.transport import (
    SEQUENCE_HEADER,
    STREAM_HEADER,
    DeliveryReport,
    OutboundMessage,
    QueueFull,
)
from auditline.topics import with_logger

PRODUCER_DEFAULTS = {
    "acks": "all",
    "enable.idempotence": True,
    "message.timeout.ms": 0,
    "partitioner": "murmur2_random",
    "linger.ms": 5,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 100_000,
}


class KafkaTransport:
    def __init__(self, client_conf: dict[str, Any], overrides: dict[str, Any] | None = None):
        self.client_conf = dict(client_conf)
        conf = {**PRODUCER_DEFAULTS, **with_logger(self.client_conf), **(overrides or {})}
        try:
            self.producer = Producer(conf)
        except KafkaException as exc:
            raise ConfigError(f"invalid Kafka producer settings: {exc}") from exc
        self._reports: list[DeliveryReport] = []
        self._report_to = self._report  # bound once: produce runs per message
        self._stream_headers: dict[str, tuple[str, str | bytes | None]] = {}  # a few streams

    def _report(self, token: int, err: KafkaError | None, _: Message) -> None:
        self._reports.append((token, None if err is None else f"{err.name()}: {err.str()}"))

    def produce(self, message: OutboundMessage, token: int) -> None:
        """``message.headers()``, with the stream's header made once per stream."""
        stream = self._stream_headers.get(message.stream)
        if stream is None:
            stream = self._stream_headers[message.stream] = (STREAM_HEADER, message.stream.encode())
        headers: list[tuple[str, str | bytes | None]] = [
            stream,
            (SEQUENCE_HEADER, b"%d" % message.sequence),
        ]
        try:
            self.producer.produce(
                message.topic, message.value, message.key, headers=headers,
                timestamp=message.timestamp_ms, on_delivery=partial(self._report_to, token),
            )  # fmt: skip
        except BufferError as exc:
            raise QueueFull(str(exc)) from exc

    def poll(self, timeout: float) -> list[DeliveryReport]:
        self.producer.poll(timeout)
        reports, self._reports = self._reports, []
        return reports

    def flush(self, timeout: float) -> int:
        return int(self.producer.flush(timeout))

    def delivered(self, topic: str, stream: str, since_ms: int) -> set[int]:
        """Scan every partition of ``topic`` from ``since_ms`` to its end for ``stream``."""
        consumer = Consumer(
            {**with_logger(self.client_conf), "group.id": "auditline-recovery",
             "enable.auto.commit": False, "enable.partition.eof": True,
             "auto.offset.reset": "earliest"}
        )  # fmt: skip
        try:
            return _scan(consumer, topic, stream.encode(), since_ms)
        finally:
            consumer.close()

    def close(self) -> None:
        self.producer.flush(10)


def _scan(consumer: Consumer, topic: str, stream: bytes, since_ms: int) -> set[int]:
    metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return set()  # the topic does not exist yet: nothing was delivered
    wanted = [TopicPartition(topic, p, since_ms) for p in metadata.partitions]
    starts = consumer.offsets_for_times(wanted, timeout=30)
    active = [tp for tp in starts if tp.offset >= 0]
    if not active:
        return set()
    consumer.assign(active)
    remaining = {tp.partition for tp in active}
    found: set[int] = set()
    while remaining:
        for message in consumer.consume(500, timeout=5):
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                remaining.discard(message.partition())
            elif error is not None:
                raise KafkaException(error)
            else:
                headers = dict(message.headers() or [])
                sequence = headers.get(SEQUENCE_HEADER)
                if headers.get(STREAM_HEADER) == stream and isinstance(sequence, bytes):
                    found.add(int(sequence))
    return found
