"""Reading topics back from the real broker in tests."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient, NewTopic


@dataclass(frozen=True)
class ReadMessage:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]


def create_topics(bootstrap: str, topics: list[str], partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, num_partitions=partitions) for t in topics])
    for future in futures.values():
        future.result(timeout=30)


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[ReadMessage]:
    """All messages of ``topic`` (at least ``expected``; waits up to ``timeout`` for them)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([topic])
    out: list[ReadMessage] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=1):
                error = m.error()
                if error is not None:
                    if error.code() in (
                        KafkaError._PARTITION_EOF,
                        KafkaError.UNKNOWN_TOPIC_OR_PART,
                    ):
                        continue
                    raise AssertionError(f"consume error: {error}")
                headers = {k: v for k, v in (m.headers() or []) if isinstance(v, bytes)}
                out.append(ReadMessage(m.partition(), m.offset(), m.key(), m.value(), headers))
            if len(out) >= expected:
                # drain a little more to catch duplicates beyond the expected count
                extra = consumer.consume(1000, timeout=2)
                out += [
                    ReadMessage(m.partition(), m.offset(), m.key(), m.value(),
                                {k: v for k, v in (m.headers() or []) if isinstance(v, bytes)})
                    for m in extra if m.error() is None
                ]  # fmt: skip
                break
    finally:
        consumer.close()
    return out
