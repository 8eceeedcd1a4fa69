"""The producer's one-pass sealing equals the reference chain hash and the codec's bytes."""

from __future__ import annotations

from hypothesis import given, settings

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.contracts import CONTRACTS_VERSION
from auditline.events import Event
from auditline.integrity.chain import compute_hash
from auditline.integrity.signing import HmacSigner
from auditline.integrity.verify import verify_event
from auditline.producer import wire
from auditline.producer.sealing import Link, Sealer
from tests.strategies import any_event

CODEC = SingleObjectCodec(Catalogue())
KEY = b"k" * 32


@settings(max_examples=200, deadline=None)
@given(event=any_event())
def test_sealed_bytes_decode_to_an_event_with_a_valid_hash_and_signature(event: Event) -> None:
    env = event.envelope
    sealer = Sealer(env.producer, CODEC.header, HmacSigner("k1", KEY))
    link = Link(env.event_id, env.event_time, wire.avro_string(env.stream), env.sequence,
                env.prev_hash, env.trace_id, env.tenant)  # fmt: skip
    sealed = sealer.seal(event, link)
    decoded = CODEC.decode(sealed.wire)
    assert decoded.envelope.schema_version == CONTRACTS_VERSION  # whatever the event said
    assert decoded.envelope.hash == sealed.digest.hex() == compute_hash(decoded)
    assert decoded.model_dump(exclude={"envelope"}) == event.model_dump(exclude={"envelope"})
    assert verify_event(decoded, {"k1": KEY}, require_signature=True) == []
    unsigned = decoded.model_copy(
        update={"envelope": decoded.envelope.model_copy(update={"signature": None})}
    )
    assert CODEC.encode(unsigned)[10:] != sealed.wire[10:]
