"""The broker's copy of the producers' checkpoints: an anchor that lives apart from the store.

A deletion in the store that also took every stored checkpoint after it is still visible against
the checkpoints topic in Kafka, for as long as the topic retains them (its retention is the
horizon of this anchor).
"""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from auditline.catalogue import Catalogue
from auditline.codec import Codec, make_codec
from auditline.errors import DecodeError, UnavailableError
from auditline.events import StreamCheckpoint
from auditline.settings import AuditlineSettings
from auditline.topics import require_broker, with_logger


def broker_checkpoints(
    settings: AuditlineSettings, timeout_s: float = 30.0
) -> list[StreamCheckpoint]:
    """Every checkpoint the topic holds now (read to its end; no group offsets committed)."""
    conf = settings.kafka.client_conf()
    require_broker(conf, settings.kafka.connect_timeout_s)
    catalogue = Catalogue(settings.topic_prefix)
    codec = make_codec(settings, catalogue)
    topic = catalogue.for_model(StreamCheckpoint).topic
    consumer = Consumer(
        {**with_logger(conf), "group.id": "auditline-verify", "enable.auto.commit": False}
    )
    try:
        return _read_to_end(consumer, topic, codec, time.monotonic() + timeout_s)
    except KafkaException as exc:
        raise UnavailableError(f"cannot read {topic} from the broker: {exc}") from exc
    finally:
        consumer.close()


def _read_to_end(
    consumer: Consumer, topic: str, codec: Codec, deadline: float
) -> list[StreamCheckpoint]:
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return []
    ends: dict[int, int] = {}
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > low:
            ends[partition] = high
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    found: list[StreamCheckpoint] = []
    while ends:
        if time.monotonic() > deadline:
            raise UnavailableError(f"reading {topic} from the broker did not finish in time")
        message = consumer.poll(0.5)
        if message is None or message.error() is not None:
            continue
        partition, offset = message.partition() or 0, message.offset() or 0
        try:
            event = codec.decode(message.value() or b"")
        except DecodeError:
            event = None  # not ours to judge here: the sink dead-letters it
        if isinstance(event, StreamCheckpoint):
            found.append(event)
        if offset + 1 >= ends.get(partition, 0):
            ends.pop(partition, None)
    return found
