"""Anchors that live in Kafka, apart from the store: ``auditline verify --broker``.

* the producers' checkpoints on the checkpoints topic, for as long as the topic retains them;
* the stream processors' **stream heads**: the integrity processor keeps the head (next sequence,
  last hash) of every producer stream it has judged in a table whose changelog topic Kafka
  compacts, so the newest head of every stream stays for good. It is not signed; it can only
  add findings, never hide one (a head names a sequence the store must reach).

A deletion in the store that also took every stored checkpoint after it, or a whole producer, is
still visible against these. The consumer here joins no group and commits nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from auditline.catalogue import Catalogue
from auditline.codec import make_codec
from auditline.errors import DecodeError, UnavailableError
from auditline.events import StreamCheckpoint
from auditline.integrity.anchors import Anchor
from auditline.settings import AuditlineSettings
from auditline.topics import require_broker, with_logger

WRITER_TAG_LENGTH = 18  # the stream processors prefix table values with "~" + 16 hex + "~"


def heads_changelog(topic_prefix: str) -> str:
    """The changelog topic of the stream processors' head table (faust: ``{app}-{table}-changelog``
    with the app ``{prefix}-streams`` and the table ``stream-heads``)."""
    return f"{topic_prefix}-streams-stream-heads-changelog"


@dataclass(frozen=True)
class BrokerAnchors:
    checkpoints: list[StreamCheckpoint]
    heads: list[Anchor]


def broker_anchors(settings: AuditlineSettings, timeout_s: float = 60.0) -> BrokerAnchors:
    """Every checkpoint and stream head the broker holds now (each topic read to its end)."""
    conf = settings.kafka.client_conf()
    require_broker(conf, settings.kafka.connect_timeout_s)
    catalogue = Catalogue(settings.topic_prefix)
    codec = make_codec(settings, catalogue)
    deadline = time.monotonic() + timeout_s
    checkpoints = []
    for message in _read_to_end(conf, catalogue.for_model(StreamCheckpoint).topic, deadline):
        try:
            event = codec.decode(message.value() or b"")
        except DecodeError:
            continue  # not ours to judge here: the sink dead-letters it
        if isinstance(event, StreamCheckpoint):
            checkpoints.append(event)
    latest: dict[bytes, Message] = {}
    for message in _read_to_end(conf, heads_changelog(settings.topic_prefix), deadline):
        latest[message.key() or b""] = message  # compacted: the newest value of a key counts
    heads = [a for m in latest.values() if (a := head_anchor(m.key(), m.value(), m.timestamp()))]
    return BrokerAnchors(checkpoints, heads)


def head_anchor(
    key: bytes | None, value: bytes | None, timestamp: tuple[int, int]
) -> Anchor | None:
    """The anchor of one head-table record (None for a tombstone or a value of another shape)."""
    if not key or not value:
        return None
    text = value.decode("utf-8", "replace")
    text = text[WRITER_TAG_LENGTH:] if text.startswith("~") else text
    try:
        head = json.loads(text)
        sequence, digest = int(head["next_sequence"]) - 1, str(head["last_hash"])
    except (ValueError, KeyError, TypeError):
        return None
    if sequence < 0:
        return None
    at = datetime.fromtimestamp(max(timestamp[1], 0) / 1000, UTC)
    stream = key.decode("utf-8", "replace")
    return Anchor(stream, sequence, digest, "the stream processors' head (broker)", at)


def _read_to_end(conf: dict[str, str], topic: str, deadline: float) -> Iterator[Message]:
    consumer = Consumer(
        {**with_logger(conf), "group.id": "auditline-verify", "enable.auto.commit": False}
    )
    try:
        yield from _messages(consumer, topic, deadline)
    except KafkaException as exc:
        raise UnavailableError(f"cannot read {topic} from the broker: {exc}") from exc
    finally:
        consumer.close()


def _messages(consumer: Consumer, topic: str, deadline: float) -> Iterator[Message]:
    ends = _ends(consumer, topic)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    while ends:
        if time.monotonic() > deadline:
            raise UnavailableError(f"reading {topic} from the broker did not finish in time")
        message = consumer.poll(0.5)
        if message is None:  # the end may be a record compacted away: ask where we are
            for tp in consumer.position([TopicPartition(topic, p) for p in list(ends)]):
                if tp.offset >= ends[tp.partition]:
                    ends.pop(tp.partition)
        elif message.error() is None:
            yield message
            if (message.offset() or 0) + 1 >= ends.get(message.partition() or 0, 0):
                ends.pop(message.partition() or 0, None)


def _ends(consumer: Consumer, topic: str) -> dict[int, int]:
    """Each partition's end offset now, for the partitions that hold records."""
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return {}  # no such topic (yet): nothing anchored there
    ends = {}
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > low:
            ends[partition] = high
    return ends
