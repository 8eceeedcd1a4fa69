"""The wire framing of contracts layout 2: round trip, and any change to hashed bytes is caught.

In layout 2 an event's body starts with ``hash`` and ``signature``; the chain covers
``00 00`` + the rest of the body. These properties hold for every event kind, signed or not,
and for events still written in layout 1 (hash and signature after ``prev_hash``).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.contracts import CONTRACTS_VERSION
from auditline.errors import DecodeError
from auditline.events import Event
from auditline.integrity.chain import (
    EMPTY_HASH_AND_NO_SIGNATURE,
    canonical_bytes,
    canonical_from_body,
    compute_hash,
    hash_matches,
    seal,
)
from auditline.integrity.signing import HmacSigner
from auditline.integrity.verify import verify_event
from auditline.producer import wire
from auditline.producer.sealing import Link, Sealer
from tests.strategies import any_event

CODEC = SingleObjectCodec(Catalogue())
HEADER = 10  # c3 01 + fingerprint
KEYS = {"k1": b"k" * 32}
SIGNER = HmacSigner("k1", KEYS["k1"])


def sealed_wire(event: Event, signed: bool) -> bytes:
    """The event as the SDK writes it: sealed in the current layout, optionally signed."""
    env = event.envelope
    sealer = Sealer(env.producer, CODEC.header, SIGNER if signed else None)
    link = Link(env.event_id, env.event_time, wire.avro_string(env.stream), env.sequence,
                env.prev_hash, env.trace_id, env.tenant)  # fmt: skip
    return sealer.seal(event, link).wire


def hashed_span(data: bytes) -> tuple[int, int]:
    """Where the hashed bytes of a framed layout-2 event start and end in ``data``."""
    body = data[HEADER:]
    canonical = canonical_from_body(body)
    rest = len(canonical) - len(EMPTY_HASH_AND_NO_SIGNATURE)
    return len(data) - rest, len(data)


@settings(max_examples=200, deadline=None)
@given(event=any_event(), signed=st.booleans())
def test_layout_2_round_trips_and_its_hashed_bytes_are_the_body_after_hash_and_signature(
    event: Event, signed: bool
) -> None:
    data = sealed_wire(event, signed)
    decoded, body = CODEC.decode_with_body(data)
    assert body is not None and decoded.envelope.schema_version == CONTRACTS_VERSION
    assert decoded.model_dump(exclude={"envelope"}) == event.model_dump(exclude={"envelope"})
    assert canonical_from_body(body) == canonical_bytes(decoded)  # no re-encoding needed
    assert verify_event(decoded, KEYS, require_signature=signed) == []
    assert CODEC.encode(decoded) == data  # the model writes back the very same bytes
    start, _ = hashed_span(data)  # everything before the hashed bytes is hash and signature
    sig = decoded.envelope.signature
    as_tuple = None if sig is None else (1, sig.key_id, sig.value)  # 1: hmac_sha256
    assert data[HEADER:start] == wire.hash_and_signature(decoded.envelope.hash, as_tuple)


@settings(max_examples=300, deadline=None)
@given(event=any_event(), signed=st.booleans(), data=st.data())
def test_any_change_to_the_hashed_bytes_breaks_the_chain(
    event: Event, signed: bool, data: st.DataObject
) -> None:
    original = sealed_wire(event, signed)
    start, end = hashed_span(original)
    position = data.draw(st.integers(start, end - 1), label="position")
    flip = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(original)
    changed[position] ^= flip
    try:
        decoded, body = CODEC.decode_with_body(bytes(changed))
    except DecodeError:
        return  # refused at the door: dead-lettered with the reason
    canonical = None
    if body is not None:
        try:
            canonical = canonical_from_body(body, decoded.envelope.schema_version)
        except ValueError:
            canonical = None  # as the worker does: re-encoded in the layout it names
    assert verify_event(decoded, KEYS, canonical=canonical), "a changed byte went unnoticed"
    if decoded == CODEC.decode(original):
        # fastavro reads a negative enum index or union branch from the end of its list (a
        # flipped low bit can turn index 1 of 3 into -2, the same symbol): the content is the
        # original's, so the stored JSON is the true event; the bytes are not its encoding,
        # which the worker's check above and re-encoding both see
        assert CODEC.encode(decoded) != bytes(changed)
        return
    assert not hash_matches(decoded)  # and from the stored JSON (``auditline verify``) too


@settings(max_examples=100, deadline=None)
@given(event=any_event())
def test_layout_1_events_are_still_read_and_verified(event: Event) -> None:
    old = seal(event.model_copy(
        update={"envelope": event.envelope.model_copy(update={"schema_version": 1})}
    ))  # fmt: skip
    data = CODEC.encode(old)
    assert data[2:HEADER] != CODEC.header(type(event))[2:]  # the layout-1 fingerprint
    decoded, body = CODEC.decode_with_body(data)
    assert decoded == old and body is not None
    assert canonical_from_body(body, 1) == canonical_bytes(old)
    assert hash_matches(decoded)
    assert compute_hash(decoded, canonical_from_body(body, 1)) == decoded.envelope.hash
