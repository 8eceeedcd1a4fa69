"""Topic administration shared by the sink and the stream processors (confluent-kafka admin)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from auditline.errors import ConfigError, SinkError, UnavailableError

KAFKA_LOGGER = logging.getLogger("auditline.kafka")


def with_logger(conf: dict[str, str]) -> dict[str, Any]:
    """Client configuration whose librdkafka logs go through Python logging (``auditline.kafka``)
    instead of standard error, so a command prints what its log level asks for, not every retry."""
    return {**conf, "logger": KAFKA_LOGGER}


def require_broker(conf: dict[str, str], timeout_s: float = 15.0) -> None:
    """Return once a broker answers; else ``UnavailableError`` naming the address and what to do."""
    try:
        # the probe's own connection retries are not news: its outcome is the error below
        AdminClient({**with_logger(conf), "log_level": 0}).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise UnavailableError(
            f"no Kafka broker answered at {conf.get('bootstrap.servers')} within "
            f"{timeout_s:.0f} s: start it, or set AUDITLINE_KAFKA__BOOTSTRAP_SERVERS "
            f"({exc.args[0].str() if exc.args else exc})"
        ) from exc


def consumer_lag(consumer: Any) -> dict[tuple[str, int], int]:
    """Records after a consumer's position, per assigned partition, from cached watermarks (no
    request to the broker)."""
    assignment = consumer.assignment()
    found = {}
    for tp in consumer.position(assignment) if assignment else ():
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if high >= 0 and tp.offset >= 0:
            found[(tp.topic, tp.partition)] = max(0, high - tp.offset)
    return found


def ensure_topics(conf: dict[str, str], topics: Iterable[str]) -> None:
    """Create missing topics (existing ones are left as they are).

    A topic added by an upgrade (e.g. ``checkpoints``) gets the partition count the existing
    ones share, so the stream processors' co-partitioning check still holds; on a fresh cluster
    every topic gets the broker's default.
    """
    wanted = list(topics)
    admin = AdminClient(with_logger(conf))
    try:
        existing = admin.list_topics(timeout=30).topics
    except KafkaException as exc:
        raise UnavailableError(
            f"the broker at {conf.get('bootstrap.servers')} did not list its topics: {exc}"
        ) from exc
    counts = {len(existing[t].partitions) for t in wanted if t in existing}
    partitions = max(counts) if counts else -1  # -1: the broker's num.partitions
    missing = [NewTopic(t, num_partitions=partitions) for t in wanted if t not in existing]
    if not missing:
        return
    futures = admin.create_topics(missing, request_timeout=30)
    for topic, future in futures.items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConfigError(f"cannot create topic {topic}: {exc}") from exc


def partition_count(conf: dict[str, str], topics: Iterable[str]) -> int:
    """The partition count the topics share; a ConfigError if they differ."""
    metadata = AdminClient(with_logger(conf)).list_topics(timeout=30).topics
    counts = {topic: len(metadata[topic].partitions) for topic in topics if topic in metadata}
    if len(set(counts.values())) > 1:
        raise ConfigError(
            f"the audit topics must have the same number of partitions, found {counts}: "
            "repartition them (kafka-topics --alter --partitions N)"
        )
    return next(iter(counts.values()), 1)


def coordinates(message: Message) -> tuple[str, int, int]:
    """A consumed message's topic, partition and offset (all three, or a ``SinkError``)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise SinkError("a consumed message lacks topic, partition or offset")
    return topic, partition, offset


def ignorable(message: Message) -> bool:
    """An end-of-partition or not-yet-created-topic report, not a record or a failure."""
    error = message.error()
    return error is not None and error.code() in (
        KafkaError._PARTITION_EOF,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    )


def next_offsets(messages: Iterable[Message]) -> list[TopicPartition]:
    """The offsets to commit once ``messages`` are handled: each partition's last, plus one."""
    last: dict[tuple[str, int], int] = {}
    for message in messages:
        topic, partition, offset = coordinates(message)
        last[(topic, partition)] = max(last.get((topic, partition), -1), offset)
    return [TopicPartition(topic, part, offset + 1) for (topic, part), offset in last.items()]
