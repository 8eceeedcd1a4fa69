from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.codec import ConfluentCodec, SingleObjectCodec
from auditline.codec.confluent import registry_client
from auditline.contracts import LAYOUTS
from auditline.demo import demo_events
from auditline.events import ZERO_HASH, Event
from auditline.integrity.chain import (
    canonical_bytes,
    canonical_from_body,
    compute_hash,
    hash_matches,
)
from tests.strategies import any_event


def test_demo_stream_is_a_valid_chain() -> None:
    events = demo_events()
    assert events[0].envelope.prev_hash == ZERO_HASH
    for before, after in itertools.pairwise(events):
        assert after.envelope.prev_hash == before.envelope.hash
        assert after.envelope.sequence == before.envelope.sequence + 1
    assert all(hash_matches(event) for event in events)


def test_any_change_to_body_or_envelope_breaks_the_hash() -> None:
    event = demo_events()[1]
    tampered_body = event.model_copy(update={"records": event.records + 1})  # type: ignore[attr-defined]
    assert not hash_matches(tampered_body)
    moved = event.envelope.model_copy(update={"sequence": 7})
    assert not hash_matches(event.model_copy(update={"envelope": moved}))


def test_hash_depends_on_the_predecessor() -> None:
    event = demo_events()[1]
    relinked = event.envelope.model_copy(update={"prev_hash": "f" * 64})
    assert compute_hash(event.model_copy(update={"envelope": relinked})) != event.envelope.hash


def test_signed_events_survive_a_json_round_trip_with_their_hash() -> None:
    from auditline.events import Signature, SignatureAlgorithm

    event = demo_events()[1]
    signed = event.model_copy(
        update={
            "envelope": event.envelope.model_copy(
                update={
                    "signature": Signature(
                        algorithm=SignatureAlgorithm.HMAC_SHA256,
                        key_id="k",
                        value=bytes(range(200, 232)),
                    )
                }
            )
        }
    )
    again = type(signed).model_validate_json(signed.model_dump_json())
    assert again == signed and hash_matches(again)


CODECS = [SingleObjectCodec(Catalogue()), ConfluentCodec(Catalogue(), registry_client("mock://c"))]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.framing)
@settings(max_examples=300, deadline=None)
@given(event=any_event())
def test_canonical_bytes_from_the_wire_equal_those_of_the_decoded_event(
    codec: SingleObjectCodec | ConfluentCodec, event: Event
) -> None:
    decoded, body = codec.decode_with_body(codec.encode(event))
    assert decoded == event and body is not None
    version = event.envelope.schema_version
    assert canonical_from_body(body, version) == canonical_bytes(event)
    assert compute_hash(event, canonical_from_body(body, version)) == compute_hash(event)


def test_a_changed_payload_on_the_wire_does_not_match_the_hash_it_carries() -> None:
    codec = SingleObjectCodec(Catalogue())
    event = demo_events()[1]
    tampered = event.model_copy(update={"records": event.records + 1})  # type: ignore[attr-defined]
    _, body = codec.decode_with_body(codec.encode(tampered))
    assert body is not None
    assert compute_hash(tampered, canonical_from_body(body)) != event.envelope.hash
    assert compute_hash(event, canonical_from_body(codec.encode(event)[10:])) == event.envelope.hash


@given(body=st.binary(max_size=120), version=st.sampled_from(LAYOUTS))
def test_truncated_or_random_bodies_raise_value_error_only(body: bytes, version: int) -> None:
    with contextlib.suppress(ValueError):
        canonical_from_body(body, version)
