"""The sink's decode (``sinks/records.py``): the codec's trusted decode gives every table the rows,
payload included, that decoding through fastavro and the models gave, and the dead-letter reason
of bytes that are no event is the one that path gave."""

from __future__ import annotations

import math
from typing import Any

from auditline.sinks.records import ModelDecoder, decoder_for
from auditline.sinks.rows import Item, Located, rows_for
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.codec import ConfluentCodec, SingleObjectCodec
from auditline.codec.confluent import registry_client
from auditline.contracts import CONTRACTS_VERSION
from auditline.demo import demo_events
from auditline.errors import DecodeError
from auditline.events import Event
from tests.strategies import any_event

CATALOGUE = Catalogue()
CODEC = SingleObjectCodec(CATALOGUE)
REFERENCE = SingleObjectCodec(CATALOGUE, trusted=False)
DECODER = decoder_for(CODEC)


def _current(event: Event) -> Event:
    envelope = event.envelope.model_copy(update={"schema_version": CONTRACTS_VERSION})
    return event.model_copy(update={"envelope": envelope})


EVENTS = st.one_of(any_event(), any_event().map(_current))
"""Events in either contracts layout, half of them in the current one (read trusted)."""


def by_reference(data: bytes) -> Item:
    return Located(REFERENCE.decode(data), "t", 3, 7)


def by_sink(data: bytes) -> Item:
    return DECODER.item(data, "t", 3, 7)


def outcome(decode: Any, messages: list[bytes]) -> tuple[Any, ...]:
    """What the sink makes of the messages: the rows it would store, or the dead-letter reason
    of the first that is no event."""
    items = []
    for data in messages:
        try:
            items.append(decode(data))
        except DecodeError as exc:
            return "dead-lettered", type(exc).__name__, str(exc)
    return "stored", same(rows_for(items).tables)


def same(value: Any) -> Any:
    """Rows comparable with ``==`` (NaN is not equal to itself), types kept."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {key: same(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(same(item) for item in value)
    return value, type(value)


def test_the_sink_decodes_with_its_codec_in_either_framing() -> None:
    assert isinstance(DECODER, ModelDecoder)
    confluent = ConfluentCodec(CATALOGUE, registry_client("mock://records"))
    assert decoder_for(confluent).codec is confluent  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=8))
def test_every_batch_has_the_rows_and_payloads_of_the_reference_decode(
    batch: list[Event],
) -> None:
    messages = [CODEC.encode(event) for event in batch]
    assert outcome(by_sink, messages) == outcome(by_reference, messages)
    for data, event in zip(messages, batch, strict=True):
        payload = rows_for([by_sink(data)]).tables["audit_log"][0][-1]
        assert payload == event.model_dump_json().encode()


def test_the_demo_events_have_the_rows_of_the_reference_decode() -> None:
    messages = [CODEC.encode(event) for event in demo_events()]
    assert outcome(by_sink, messages) == outcome(by_reference, messages)


@settings(max_examples=200, deadline=None)
@given(EVENTS, st.data())
def test_damaged_bytes_are_dead_lettered_with_the_reference_reason(
    event: Event, data: st.DataObject
) -> None:
    body = bytearray(CODEC.encode(event))
    at = data.draw(st.integers(10, len(body) - 1))
    body[at] = data.draw(st.integers(0, 255))
    assert outcome(by_sink, [bytes(body)]) == outcome(by_reference, [bytes(body)])
