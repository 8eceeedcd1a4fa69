"""The SDK behaves the same on the real broker and on the in-process transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import demo_events
from auditline.events import AssetDeclared, DataMovement, Event, Prediction
from auditline.integrity.verify import ChainVerifier
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings
from tests.kafka_helpers import read_topic

Reader = Callable[[str, int], list[bytes]]


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def producer_and_reader(
    request: pytest.FixtureRequest, tmp_path: Path, topic_prefix: str
) -> Iterator[tuple[AuditProducer, Reader]]:
    settings = AuditlineSettings(
        topic_prefix=topic_prefix,
        producer={"service": "conf", "instance": "i1", "transport": request.param},
        spool={"path": str(tmp_path), "fsync": "never"},
    )
    if request.param == "memory":
        broker = InProcessBroker()
        producer = AuditProducer(settings, transport=InProcessTransport(broker))

        def read(topic: str, expected: int) -> list[bytes]:
            return [m.value for m in broker.read(topic)]
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        settings = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})}
        )
        producer = AuditProducer(settings)

        def read(topic: str, expected: int) -> list[bytes]:
            return [m.value for m in read_topic(bootstrap, topic, expected)]

    yield producer, read
    producer.close(5)


def test_streams_arrive_complete_and_chained(
    producer_and_reader: tuple[AuditProducer, Reader],
) -> None:
    producer, read = producer_and_reader
    bodies = {type(e): e.model_dump(exclude={"envelope"}) for e in demo_events()}
    for _ in range(100):
        producer.emit(Prediction, **bodies[Prediction])
    producer.emit_many(AssetDeclared, [bodies[AssetDeclared]] * 20)
    producer.emit(DataMovement, **bodies[DataMovement])
    assert producer.flush(30)
    catalogue = Catalogue(producer.settings.topic_prefix)
    codec = SingleObjectCodec(catalogue)
    counts = {Prediction: 100, AssetDeclared: 20, DataMovement: 1}
    for model, count in counts.items():
        events: list[Event] = [
            codec.decode(v) for v in read(catalogue.for_model(model).topic, count)
        ]
        assert [e.envelope.sequence for e in events] == list(range(count))
        verifier = ChainVerifier({})
        assert [f for e in events for f in verifier.observe(e)] == []
