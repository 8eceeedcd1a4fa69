"""One conformance suite for the transport seam, run on the real broker and in-process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from auditline.producer.kafka import KafkaTransport
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.producer.transport import OutboundMessage, Transport
from tests.kafka_helpers import create_topics, read_topic


@dataclass
class Harness:
    transport: Transport
    read: Callable[[str, int], list[tuple[bytes, bytes, dict[str, bytes]]]]
    prepare: Callable[[str], None]


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        broker = InProcessBroker()

        def read_memory(topic: str, expected: int) -> list[tuple[bytes, bytes, dict[str, bytes]]]:
            return [
                (m.key, m.value, {"auditline-stream": m.stream.encode(),
                                  "auditline-seq": b"%d" % m.sequence})
                for m in broker.read(topic)
            ]  # fmt: skip

        transport: Transport = InProcessTransport(broker)
        yield Harness(transport, read_memory, lambda topic: None)
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")

        def read_kafka(topic: str, expected: int) -> list[tuple[bytes, bytes, dict[str, bytes]]]:
            return [(m.key, m.value, m.headers) for m in read_topic(bootstrap, topic, expected)]

        transport = KafkaTransport({"bootstrap.servers": bootstrap})
        yield Harness(transport, read_kafka, lambda topic: create_topics(bootstrap, [topic]))
    transport.close()


def messages(topic: str, streams: int, per_stream: int, ts: int) -> list[OutboundMessage]:
    return [
        OutboundMessage(topic, f"s{s}".encode(), f"s{s}:{q}".encode(), f"s{s}", q, ts + q)
        for q in range(per_stream)
        for s in range(streams)
    ]


def deliver(harness: Harness, batch: list[OutboundMessage]) -> dict[int, str | None]:
    for token, message in enumerate(batch):
        harness.transport.produce(message, token)
    assert harness.transport.flush(30) == 0
    return dict(harness.transport.poll(0))


def test_every_message_is_reported_delivered(harness: Harness, unique: str) -> None:
    topic = f"conf-{unique}"
    harness.prepare(topic)
    reports = deliver(harness, messages(topic, 4, 50, 1_000_000))
    assert reports == dict.fromkeys(range(200))


def test_order_is_kept_per_key_and_headers_name_stream_and_sequence(
    harness: Harness, unique: str
) -> None:
    topic = f"conf-{unique}"
    harness.prepare(topic)
    deliver(harness, messages(topic, 4, 50, 1_000_000))
    stored = harness.read(topic, 200)
    assert len(stored) == 200
    for s in range(4):
        mine = [(v, h) for k, v, h in stored if k == f"s{s}".encode()]
        assert [v for v, _ in mine] == [f"s{s}:{q}".encode() for q in range(50)]
        assert [int(h["auditline-seq"]) for _, h in mine] == list(range(50))
        assert {h["auditline-stream"] for _, h in mine} == {f"s{s}".encode()}


def test_delivered_reports_sequences_of_one_stream_since_a_time(
    harness: Harness, unique: str
) -> None:
    topic = f"conf-{unique}"
    harness.prepare(topic)
    now = int(time.time() * 1000)
    deliver(harness, messages(topic, 3, 20, now))
    assert harness.transport.delivered(topic, "s1", now) == set(range(20))
    assert harness.transport.delivered(topic, "s1", now + 15) == set(range(15, 20))
    assert harness.transport.delivered(topic, "nobody", now) == set()


def test_delivered_on_a_missing_topic_is_empty(harness: Harness, unique: str) -> None:
    assert harness.transport.delivered(f"missing-{unique}", "s1", 0) == set()
