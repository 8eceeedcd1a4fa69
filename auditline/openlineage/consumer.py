"""OpenLineage JSON from Kafka (the KafkaTransport's topic) into the audit, at least once.

Per batch: consume up to ``BATCH`` messages, ingest them (``Ingestor``: accepted events' audit
events spooled), produce each rejected message to the dead-letter topic with its reason, source
topic, partition and offset in headers and wait for those to be acknowledged, and only then
commit the offsets, synchronously (a dead letter the broker did not take stops the batch
uncommitted). A dead letter over ``DEAD_LETTER_MAX`` bytes keeps its first bytes, with its size
and the SHA-256 of the whole in headers. A crash before the commit reads the batch again: its
OpenLineage events are ingested again (new audit events with the same digest and run id, which
tell a re-delivery from a new event); none is lost.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, Producer

from auditline.catalogue import Catalogue
from auditline.errors import SinkError
from auditline.openlineage.ingest import Ingestor
from auditline.settings import AuditlineSettings
from auditline.topics import ensure_topics, ignorable, next_offsets, with_logger

BATCH = 500
WAIT_S = 0.5
DEAD_LETTER_MAX = 512 * 1024
"""Bytes of a rejected message a dead letter keeps (under the broker's 1 MB default)."""


def input_topic(settings: AuditlineSettings) -> str:
    return settings.openlineage.topic or f"{settings.topic_prefix}.openlineage.in"


@dataclass
class ConsumerStats:
    consumed: int = 0
    accepted: int = 0
    dead_lettered: int = 0


class OpenLineageConsumer:
    """Consumes the OpenLineage topic in its own group (see the module docstring)."""

    def __init__(self, settings: AuditlineSettings, ingestor: Ingestor) -> None:
        conf = settings.kafka.client_conf()
        self.topic = input_topic(settings)
        self.dead_letter_topic = Catalogue(settings.topic_prefix).dead_letter_topic
        ensure_topics(conf, [self.topic, self.dead_letter_topic])
        self.ingestor = ingestor
        self.consumer = Consumer(
            {
                **with_logger(conf),
                "group.id": settings.openlineage.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([self.topic])
        self.dead_letters = Producer(
            {**with_logger(conf), "acks": "all", "enable.idempotence": True}
        )
        self.stats = ConsumerStats()
        self.undelivered: list[str] = []

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> ConsumerStats:
        """Consume until ``stop`` (or nothing arrived for ``idle_exit_s``)."""
        idle_since = time.monotonic()
        while not stop.is_set():
            if self.step():
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                break
        return self.stats

    def step(self) -> int:
        """One batch: consume, ingest, dead-letter, commit. Returns the messages handled."""
        messages = [m for m in self.consumer.consume(BATCH, WAIT_S) if not ignorable(m)]
        if not messages:
            return 0
        for message in messages:
            if message.error() is not None:
                raise SinkError(f"consume failed: {message.error()}")
        outcomes = self.ingestor.ingest([m.value() or b"" for m in messages])
        rejected = 0
        for message, outcome in zip(messages, outcomes, strict=True):
            if not outcome.accepted:
                self._dead_letter(message, outcome.reason)
                rejected += 1
        if rejected and (self.dead_letters.flush(30) or self.undelivered):
            failed, self.undelivered = self.undelivered, []
            raise SinkError(
                "dead letters not acknowledged, not committing: "
                + ("; ".join(failed) or "the broker did not answer in 30 s")
            )
        self.consumer.commit(offsets=next_offsets(messages), asynchronous=False)
        self.stats.consumed += len(messages)
        self.stats.accepted += len(messages) - rejected
        self.stats.dead_lettered += rejected
        return len(messages)

    def _dead_letter(self, message: Message, reason: str) -> None:
        value = message.value() or b""
        headers: list[tuple[str, str | bytes | None]] = [
            ("reason", reason.encode()),
            ("source_topic", (message.topic() or "").encode()),
            ("source_partition", str(message.partition()).encode()),
            ("source_offset", str(message.offset()).encode()),
        ]
        if len(value) > DEAD_LETTER_MAX:
            headers += [("truncated_from", str(len(value)).encode()),
                        ("sha256", hashlib.sha256(value).hexdigest().encode())]  # fmt: skip
            value = value[:DEAD_LETTER_MAX]
        self.dead_letters.produce(
            self.dead_letter_topic, value, message.key(), headers=headers,
            on_delivery=self._delivered,
        )  # fmt: skip
        self.dead_letters.poll(0)

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None:
            self.undelivered.append(str(error))

    def close(self) -> None:
        self.dead_letters.flush(30)
        self.consumer.close()
