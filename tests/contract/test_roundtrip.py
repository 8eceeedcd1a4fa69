"""Every model round-trips through fastavro with its schema, in both framings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from auditline.catalogue import Catalogue
from auditline.codec import ConfluentCodec, SingleObjectCodec
from auditline.codec.confluent import registry_client
from auditline.demo import demo_events
from auditline.events import Event
from tests.strategies import events_of

CATALOGUE = Catalogue()


def codecs() -> list[SingleObjectCodec | ConfluentCodec]:
    return [
        SingleObjectCodec(CATALOGUE),
        ConfluentCodec(CATALOGUE, registry_client("mock://roundtrip")),
    ]


@pytest.mark.parametrize("codec", codecs(), ids=lambda c: c.framing)
def test_demo_events_round_trip(codec: SingleObjectCodec | ConfluentCodec) -> None:
    for event in demo_events():
        assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize("entry", list(CATALOGUE), ids=lambda e: e.model.__name__)
@pytest.mark.parametrize("codec", codecs(), ids=lambda c: c.framing)
def test_every_model_round_trips(entry, codec) -> None:  # type: ignore[no-untyped-def]
    @settings(max_examples=60, deadline=None)
    @given(events_of(entry.model))
    def round_trip(event: Event) -> None:
        wire = codec.encode(event)
        assert codec.decode(wire) == event

    round_trip()


def test_single_object_header_is_marker_plus_fingerprint() -> None:
    event = demo_events()[0]
    wire = SingleObjectCodec(CATALOGUE).encode(event)
    assert wire[:2] == b"\xc3\x01"
    assert wire[2:10] == CATALOGUE.for_model(type(event)).schema.fingerprint


def test_confluent_header_is_magic_plus_registered_id() -> None:
    client = registry_client("mock://header")
    codec = ConfluentCodec(CATALOGUE, client)
    event = demo_events()[0]
    wire = codec.encode(event)
    entry = CATALOGUE.for_model(type(event))
    registered = client.get_latest_version(f"{entry.topic}-{entry.schema.name}")
    assert wire[0] == 0
    assert int.from_bytes(wire[1:5], "big") == registered.schema_id
    # a second codec instance (another process) decodes via the registry alone
    assert ConfluentCodec(CATALOGUE, client).decode(wire) == event
