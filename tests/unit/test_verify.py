from __future__ import annotations

from auditline.demo import demo_events
from auditline.events import IntegrityKind
from auditline.integrity.chain import seal
from auditline.integrity.signing import HmacSigner
from auditline.integrity.verify import ChainVerifier, StreamHead, verify_event

KEY = bytes(range(32))


def signed_stream() -> list:
    signer = HmacSigner("k1", KEY)
    out = []
    for event in demo_events():
        sig = signer.sign(bytes.fromhex(event.envelope.hash))
        out.append(
            event.model_copy(
                update={"envelope": event.envelope.model_copy(update={"signature": sig})}
            )
        )
    return out


def kinds(findings: list) -> list[IntegrityKind]:
    return [f.kind for f in findings]


def test_an_intact_signed_stream_verifies() -> None:
    verifier = ChainVerifier({}, {"k1": KEY}, require_signature=True)
    assert [f for e in signed_stream() for f in verifier.observe(e)] == []


def test_tampered_payload_is_detected() -> None:
    event = signed_stream()[1]
    tampered = event.model_copy(update={"records": 1})
    assert kinds(verify_event(tampered, {"k1": KEY})) == [IntegrityKind.TAMPERED]


def test_forged_signature_and_unknown_key_are_detected() -> None:
    event = signed_stream()[1]
    forged = HmacSigner("k1", b"x" * 32).sign(bytes.fromhex(event.envelope.hash))
    forged_event = event.model_copy(
        update={"envelope": event.envelope.model_copy(update={"signature": forged})}
    )
    assert kinds(verify_event(forged_event, {"k1": KEY})) == [IntegrityKind.BAD_SIGNATURE]
    assert kinds(verify_event(event, {"other": KEY})) == [IntegrityKind.BAD_SIGNATURE]


def test_an_attacker_who_recomputes_the_hash_is_caught_by_the_signature() -> None:
    event = signed_stream()[1]
    rewritten = seal(event.model_copy(update={"records": 1}))  # hash recomputed, old signature
    assert kinds(verify_event(rewritten, {"k1": KEY})) == [IntegrityKind.BAD_SIGNATURE]


def test_unsigned_events_flagged_only_when_signatures_are_required() -> None:
    event = demo_events()[0]
    assert verify_event(event) == []
    assert kinds(verify_event(event, require_signature=True)) == [IntegrityKind.UNSIGNED]


def test_gap_duplicate_reorder_and_broken_link() -> None:
    events = demo_events()
    verifier = ChainVerifier({})
    assert verifier.observe(events[0]) == []
    assert kinds(verifier.observe(events[2])) == [IntegrityKind.GAP]
    assert kinds(verifier.observe(events[2])) == [IntegrityKind.DUPLICATE]
    assert kinds(verifier.observe(events[1])) == [IntegrityKind.REORDER]
    state = {events[0].envelope.stream: StreamHead(3, "f" * 64)}
    assert kinds(ChainVerifier(state).observe(events[3])) == [IntegrityKind.BROKEN_CHAIN]
