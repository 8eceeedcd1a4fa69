"""Events produced with confluent-kafka to the real broker come back equal and in key order."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from auditline.catalogue import Catalogue
from auditline.codec import ConfluentCodec, SingleObjectCodec
from auditline.codec.confluent import registry_client
from auditline.demo import demo_events
from auditline.events import Event, Prediction

pytestmark = pytest.mark.integration


def _streams(count_per_stream: int, streams: int) -> list[Event]:
    """Predictions from several producer streams, interleaved, sequence per stream."""
    sample = next(e for e in demo_events() if isinstance(e, Prediction))
    events: list[Event] = []
    for seq in range(count_per_stream):
        for s in range(streams):
            envelope = sample.envelope.model_copy(update={"stream": f"svc/{s}", "sequence": seq})
            events.append(
                sample.model_copy(update={"envelope": envelope, "prediction_id": f"{s}-{seq}"})
            )
    return events


@pytest.mark.parametrize("framing", ["single-object", "confluent"])
def test_produce_consume_decode_in_order_per_key(
    kafka_bootstrap: str, topic_prefix: str, unique: str, framing: str
) -> None:
    catalogue = Catalogue(topic_prefix)
    codec = (
        SingleObjectCodec(catalogue)
        if framing == "single-object"
        else ConfluentCodec(catalogue, registry_client(f"mock://{unique}"))
    )
    topic = catalogue.for_model(Prediction).topic
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=3)]).values():
        future.result(timeout=30)

    sent = _streams(count_per_stream=200, streams=6)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for event in sent:
        producer.produce(
            topic, key=catalogue.for_model(Prediction).key(event), value=codec.encode(event)
        )
        producer.poll(0)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g-{unique}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: list[Event] = []
    partitions_of: dict[str, set[int]] = {}
    try:
        while len(received) < len(sent):
            message = consumer.poll(10)
            assert message is not None, f"timed out after {len(received)} of {len(sent)} events"
            assert message.error() is None, message.error()
            event = codec.decode(message.value())
            received.append(event)
            partitions_of.setdefault(event.envelope.stream, set()).add(message.partition())
    finally:
        consumer.close()

    assert sorted(received, key=_order) == sorted(sent, key=_order)
    assert all(len(parts) == 1 for parts in partitions_of.values()), "one stream, one partition"
    assert len({p for parts in partitions_of.values() for p in parts}) > 1, "keys spread out"
    for stream in partitions_of:
        sequences = [e.envelope.sequence for e in received if e.envelope.stream == stream]
        assert sequences == list(range(200)), f"{stream} arrived out of order"


def _order(event: Event) -> tuple[str, int]:
    return (event.envelope.stream, event.envelope.sequence)
