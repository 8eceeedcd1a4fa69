"""Verification of events and producer streams (pure): tampering, forgery, gaps, duplicates.

``verify_event`` judges one event on its own (hash and signature). ``ChainVerifier`` follows
producer streams event by event over a state mapping (stream → head), so the same logic runs
inside a stream processor (state = a table), in ``auditline verify`` and in tests (a dict).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from auditline.events import ZERO_HASH, Event, IntegrityKind
from auditline.integrity.chain import compute_hash
from auditline.integrity.signing import Keys, PublicKey, signature_valid


@dataclass(frozen=True)
class Finding:
    kind: IntegrityKind
    stream: str
    event_id: str
    sequence: int
    detail: str
    expected_sequence: int | None = None


def verify_event(
    event: Event,
    keys: Keys | None = None,
    *,
    require_signature: bool = False,
    canonical: bytes | None = None,
) -> list[Finding]:
    """Problems with one event: content changed after hashing, forged or missing signature.

    ``canonical``: the event's canonical bytes taken from the wire (``canonical_from_body``),
    which spares re-encoding the decoded event.
    """
    env = event.envelope
    found: list[Finding] = []

    def finding(kind: IntegrityKind, detail: str) -> None:
        found.append(Finding(kind, env.stream, str(env.event_id), env.sequence, detail))

    if compute_hash(event, canonical) != env.hash:
        finding(IntegrityKind.TAMPERED, "content does not match the hash it carries")
    if env.signature is None:
        if require_signature:
            finding(IntegrityKind.UNSIGNED, "event carries no signature")
        return found
    key = (keys or {}).get(env.signature.key_id)
    if isinstance(key, PublicKey) and not key.may_sign_for(env.producer.service):
        finding(
            IntegrityKind.BAD_SIGNATURE,
            f"key {env.signature.key_id} may not sign for service {env.producer.service}",
        )
        return found
    valid = signature_valid(env.signature, bytes.fromhex(env.hash), keys or {})
    if valid is False:
        finding(
            IntegrityKind.BAD_SIGNATURE,
            f"signature does not verify with key {env.signature.key_id}",
        )
    elif valid is None:
        finding(
            IntegrityKind.BAD_SIGNATURE,
            f"signed with unknown key {env.signature.key_id}: add its public key to the keyring",
        )
    return found


@dataclass(frozen=True)
class StreamHead:
    next_sequence: int = 0
    last_hash: str = ZERO_HASH


class ChainVerifier:
    """Follows streams in arrival order; ``state`` maps stream id → StreamHead."""

    def __init__(
        self,
        state: MutableMapping[str, StreamHead],
        keys: Keys | None = None,
        *,
        require_signature: bool = False,
    ) -> None:
        self.state = state
        self.keys = keys or {}
        self.require_signature = require_signature

    def observe(self, event: Event, canonical: bytes | None = None) -> list[Finding]:
        env = event.envelope
        found = verify_event(
            event, self.keys, require_signature=self.require_signature, canonical=canonical
        )
        head = self.state.get(env.stream, StreamHead())

        def finding(kind: IntegrityKind, detail: str) -> None:
            found.append(
                Finding(
                    kind, env.stream, str(env.event_id), env.sequence, detail, head.next_sequence
                )
            )

        if env.sequence < head.next_sequence:
            kind = (
                IntegrityKind.DUPLICATE
                if env.sequence == head.next_sequence - 1
                else IntegrityKind.REORDER
            )
            finding(kind, f"sequence {env.sequence} arrived after {head.next_sequence - 1}")
            return found  # the head stays: a replayed or late event does not move the chain
        if env.sequence > head.next_sequence:
            finding(
                IntegrityKind.GAP, f"sequences {head.next_sequence}..{env.sequence - 1} missing"
            )
        elif env.prev_hash != head.last_hash:
            finding(
                IntegrityKind.BROKEN_CHAIN, "prev_hash does not match the previous event's hash"
            )
        self.state[env.stream] = StreamHead(env.sequence + 1, env.hash)
        return found
