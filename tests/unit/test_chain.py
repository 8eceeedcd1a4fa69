from __future__ import annotations

import itertools

from auditline.chain import compute_hash, hash_matches
from auditline.demo import demo_events
from auditline.events import ZERO_HASH


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
