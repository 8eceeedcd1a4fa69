"""Reading topics back from the real broker in tests, and the CLI environment pointing at it."""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

from auditline.settings import AuditlineSettings


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
    """Every message of ``topic``: reads to the end of all partitions, once ``expected`` arrived."""
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
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=1):
                error = m.error()
                if error is None:
                    at_end.discard(m.partition())
                    headers = {k: v for k, v in (m.headers() or []) if isinstance(v, bytes)}
                    out.append(ReadMessage(m.partition(), m.offset(), m.key(), m.value(), headers))
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                elif error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise AssertionError(f"consume error: {error}")
            assigned = {tp.partition for tp in consumer.assignment()}
            if len(out) >= expected and assigned and assigned <= at_end:
                break
    finally:
        consumer.close()
    return out


def cli_env(bootstrap: str, prefix: str, dsn: str, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")}
    env.update({
        "AUDITLINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "AUDITLINE_TOPIC_PREFIX": prefix,
        "AUDITLINE_CLICKHOUSE__DSN": dsn, "AUDITLINE_CLICKHOUSE__DATABASE": database,
        "AUDITLINE_SINK__BATCH_MAX_EVENTS": "300", "AUDITLINE_SINK__BATCH_MAX_WAIT_MS": "200",
        "AUDITLINE_SINK__GROUP_ID": f"sink-{prefix}",
    })  # fmt: skip
    return env


def free_port() -> int:
    """A loopback port free now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def producer_settings(bootstrap: str, prefix: str, spool: Path) -> AuditlineSettings:
    return AuditlineSettings(
        kafka={"bootstrap_servers": bootstrap}, topic_prefix=prefix,
        producer={"service": "svc", "instance": "i1"}, spool={"path": str(spool), "fsync": "never"},
    )  # fmt: skip
