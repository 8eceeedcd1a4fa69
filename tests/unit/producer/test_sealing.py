"""The producer's one-pass sealing equals the reference chain hash and the codec's bytes."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.contracts import CONTRACTS_VERSION
from auditline.events import Event
from auditline.integrity.chain import compute_hash
from auditline.integrity.signing import Ed25519Signer, HmacSigner
from auditline.integrity.verify import verify_event
from auditline.producer import wire
from auditline.producer.sealing import Link, Sealer, _HmacSha256
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


@settings(max_examples=200, deadline=None)
@given(event=any_event(), signer=st.sampled_from(["none", "hmac", "ed25519"]))
def test_sealed_bytes_are_the_codecs_encoding_of_the_sealed_event(
    event: Event, signer: str
) -> None:
    """Hand-written envelope, compiled body, hash and signature: byte for byte what fastavro
    writes for the whole event the consumer decodes."""
    env = event.envelope
    signers = {"none": None, "hmac": HmacSigner("k1", KEY), "ed25519": ED25519}
    sealer = Sealer(env.producer, CODEC.header, signers[signer])
    link = Link(env.event_id, env.event_time, wire.avro_string(env.stream), env.sequence,
                env.prev_hash, env.trace_id, env.tenant)  # fmt: skip
    sealed = sealer.seal(event, link)
    assert CODEC.encode(CODEC.decode(sealed.wire)) == sealed.wire


ED25519 = Ed25519Signer.generate("e1")


@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=200), digest=st.binary(min_size=32, max_size=32))
def test_the_precomputed_hmac_equals_hmac_sha256(key: bytes, digest: bytes) -> None:
    assert _HmacSha256(key)(digest) == hmac.new(key, digest, hashlib.sha256).digest()
