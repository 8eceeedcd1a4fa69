"""Property tests: encode/decode is the identity; bad bytes raise the typed decode error only."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.codec import ConfluentCodec, SingleObjectCodec
from auditline.codec.confluent import registry_client
from auditline.errors import (
    DecodeError,
    SchemaMismatchError,
    TruncatedMessageError,
    UnknownSchemaError,
)
from auditline.events import Event
from tests.strategies import any_event

CATALOGUE = Catalogue()
SINGLE = SingleObjectCodec(CATALOGUE)
CONFLUENT = ConfluentCodec(CATALOGUE, registry_client("mock://properties"))
CODECS = [SINGLE, CONFLUENT]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.framing)
@settings(max_examples=300, deadline=None)
@given(event=any_event())
def test_decode_inverts_encode(codec: SingleObjectCodec | ConfluentCodec, event: Event) -> None:
    assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.framing)
@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_raise_only_decode_error(
    codec: SingleObjectCodec | ConfluentCodec, data: bytes
) -> None:
    with contextlib.suppress(DecodeError):
        codec.decode(data)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.framing)
@settings(max_examples=300, deadline=None)
@given(event=any_event(), cut=st.integers(min_value=1))
def test_truncated_messages_raise_decode_error(
    codec: SingleObjectCodec | ConfluentCodec, event: Event, cut: int
) -> None:
    wire = codec.encode(event)
    keep = cut % len(wire)
    with pytest.raises(DecodeError):
        codec.decode(wire[:keep])


@settings(max_examples=200, deadline=None)
@given(event=any_event(), body=st.binary(min_size=1, max_size=200))
def test_valid_header_with_garbage_body_raises_decode_error(event: Event, body: bytes) -> None:
    header = SINGLE.encode(event)[:10]
    with pytest.raises(DecodeError):
        SINGLE.decode(header + body)


def test_errors_name_what_was_wrong() -> None:
    from auditline.demo import demo_events

    event = demo_events()[1]
    wire = SINGLE.encode(event)
    with pytest.raises(TruncatedMessageError, match="shorter than the 10-byte"):
        SINGLE.decode(wire[:5])
    with pytest.raises(
        TruncatedMessageError, match=r"inside its auditline\.events\.DataMovement body"
    ):
        SINGLE.decode(wire[:-3])
    with pytest.raises(UnknownSchemaError, match="fingerprint 0000000000000000"):
        SINGLE.decode(wire[:2] + bytes(8) + wire[10:])
    with pytest.raises(SchemaMismatchError, match="bytes left after"):
        SINGLE.decode(wire + b"\x00\x00")
    with pytest.raises(DecodeError, match="not the single-object marker"):
        SINGLE.decode(b"\x00" * 20)
    with pytest.raises(DecodeError, match="exceeds the 100-byte limit"):
        SingleObjectCodec(CATALOGUE, max_message_bytes=100).decode(wire)
    other = CATALOGUE.for_model(type(demo_events()[0])).schema.fingerprint
    with pytest.raises(DecodeError):  # the header names another schema than the body's
        SINGLE.decode(wire[:2] + other + wire[10:])
