"""The SDK emit path takes provider + region locations; the wire carries the resolved country."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import demo_events
from auditline.errors import InvalidEventError
from auditline.events import DataMovement, Location
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings

CODEC = SingleObjectCodec(Catalogue())


def movement(**changes: Any) -> dict[str, Any]:
    return {**demo_events()[1].model_dump(exclude={"envelope"}), **changes}


def test_emit_resolves_provider_and_region(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    producer.emit(
        DataMovement,
        **movement(
            source={"provider": "azure", "region": "germanywestcentral"},
            destination={"provider": "oracle", "region": "us-ashburn-1"},
        ),
    )
    assert producer.flush(5)
    [event] = [CODEC.decode(m.value) for m in broker.read("auditline.movements")]
    assert isinstance(event, DataMovement)
    assert event.source == Location(country="DE", provider="azure", region="germanywestcentral")
    assert event.destination == Location(country="US", provider="oci", region="us-ashburn-1")


def test_emit_refuses_an_unknown_region_without_a_country(
    make_producer: Callable[..., AuditProducer],
) -> None:
    producer = make_producer()
    with pytest.raises(InvalidEventError) as caught:
        producer.emit(DataMovement, **movement(destination={"provider": "gcp", "region": "mars1"}))
    assert caught.value.field == "destination"
    assert "gcp region 'mars1' is not in the region catalogue" in str(caught.value)


def test_the_producers_own_region_gives_its_country(
    tmp_path: Path, broker: InProcessBroker
) -> None:
    settings = AuditlineSettings(
        producer={"service": "billing", "instance": "pod-1", "provider": "aws",
                  "region": "ap-northeast-1", "transport": "memory"},
        spool={"path": str(tmp_path / "spool"), "fsync": "never"},
    )  # fmt: skip
    producer = AuditProducer(settings, transport=InProcessTransport(broker))
    try:
        assert producer.identity.location == Location(
            country="JP", provider="aws", region="ap-northeast-1"
        )
    finally:
        producer.close(timeout=1)
