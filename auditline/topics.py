"""Topic administration shared by the sink and the stream processors (confluent-kafka admin)."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from auditline.errors import ConfigError


def ensure_topics(conf: dict[str, str], topics: Iterable[str]) -> None:
    """Create missing topics with the broker's defaults (existing ones are left as they are)."""
    admin = AdminClient(dict(conf))
    futures = admin.create_topics([NewTopic(topic) for topic in topics], request_timeout=30)
    for topic, future in futures.items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConfigError(f"cannot create topic {topic}: {exc}") from exc


def partition_count(conf: dict[str, str], topics: Iterable[str]) -> int:
    """The partition count the topics share; a ConfigError if they differ."""
    metadata = AdminClient(dict(conf)).list_topics(timeout=30).topics
    counts = {topic: len(metadata[topic].partitions) for topic in topics if topic in metadata}
    if len(set(counts.values())) > 1:
        raise ConfigError(
            f"the audit topics must have the same number of partitions, found {counts}: "
            "repartition them (kafka-topics --alter --partitions N)"
        )
    return next(iter(counts.values()), 1)
