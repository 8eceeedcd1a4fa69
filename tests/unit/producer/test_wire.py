"""The hand-written envelope encoding equals fastavro's, byte for byte."""

from __future__ import annotations

import os
from io import BytesIO

from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.contracts import bundled_schema
from auditline.events import Envelope, Event, Prediction, Signature, SignatureAlgorithm
from auditline.producer import wire
from tests.strategies import events_of

ENVELOPE = bundled_schema("auditline.events.Envelope").parsed


def fastavro_bytes(envelope: Envelope) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, ENVELOPE, envelope.model_dump())
    return buffer.getvalue()


def hand_bytes(envelope: Envelope) -> bytes:
    signature = envelope.signature
    sig = None
    if signature is not None:
        index = ["unknown", "hmac_sha256", "ed25519"].index(signature.algorithm)
        sig = (index, signature.key_id, signature.value)
    return (
        wire.hash_and_signature(envelope.hash, sig)
        + wire.envelope_head(
            envelope.event_id, envelope.event_time, producer=wire.producer_bytes(envelope.producer),
            stream=wire.avro_string(envelope.stream), sequence=envelope.sequence,
            prev_hash=envelope.prev_hash,
        )
        + wire.envelope_tail(envelope.trace_id, envelope.tenant, envelope.schema_version)
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(event=events_of(Prediction))
def test_envelope_bytes_equal_fastavro(event: Event) -> None:
    assert hand_bytes(event.envelope) == fastavro_bytes(event.envelope)


@settings(max_examples=200, deadline=None)
@given(value=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_zigzag_varint_matches_fastavro(value: int) -> None:
    buffer = BytesIO()
    schemaless_writer(buffer, {"type": "long"}, value)
    assert wire.avro_long(value) == buffer.getvalue()


def test_signed_envelope_bytes_equal_fastavro() -> None:
    from auditline.demo import demo_events

    envelope = demo_events()[0].envelope
    signed = envelope.model_copy(
        update={
            "signature": Signature(
                algorithm=SignatureAlgorithm.HMAC_SHA256, key_id="k", value=b"\x01" * 32
            )
        }
    )
    assert hand_bytes(signed) == fastavro_bytes(signed)


def test_uuid_source_gives_distinct_version_4_ids() -> None:
    source = wire.UuidSource(batch=8)
    ids = [source() for _ in range(100)]
    assert len(set(ids)) == 100 and {i.version for i in ids} == {4}


def test_uuid_source_draws_other_ids_in_a_forked_child() -> None:
    source = wire.UuidSource(batch=8)
    source()  # a batch drawn before the fork: the child holds a copy of it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, b"".join(source.next_text()[1] for _ in range(3)))
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = os.read(read, 3 * 36)
    os.close(read)
    parent = b"".join(source.next_text()[1] for _ in range(3))
    assert status == 0 and len(child) == 3 * 36 and child != parent
