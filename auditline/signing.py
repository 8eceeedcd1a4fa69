"""Event signatures: HMAC-SHA256 over the event hash, with a key id verifiers resolve.

A signature proves the event came from a holder of the key; the hash chain proves nothing was
changed or removed afterwards. Keys are bytes; settings carry them hex-encoded.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from auditline.errors import ConfigError
from auditline.events import Signature, SignatureAlgorithm


@dataclass(frozen=True)
class HmacSigner:
    key_id: str
    key: bytes = field(repr=False)

    @classmethod
    def from_hex(cls, key_id: str, key_hex: str) -> HmacSigner:
        try:
            key = bytes.fromhex(key_hex)
        except ValueError as exc:
            raise ConfigError(
                "AUDITLINE_PRODUCER__SIGNING_KEY must be hex (e.g. `openssl rand -hex 32`)"
            ) from exc
        if len(key) < 16:
            raise ConfigError("AUDITLINE_PRODUCER__SIGNING_KEY must be at least 16 bytes (32 hex)")
        return cls(key_id, key)

    def sign(self, digest: bytes) -> Signature:
        value = hmac.new(self.key, digest, hashlib.sha256).digest()
        return Signature(algorithm=SignatureAlgorithm.HMAC_SHA256, key_id=self.key_id, value=value)

    def mac(self, digest: bytes) -> bytes:
        """The signature value alone (the producer's hot path)."""
        return hmac.new(self.key, digest, hashlib.sha256).digest()


def signature_valid(signature: Signature, digest: bytes, keys: dict[str, bytes]) -> bool | None:
    """True/False for a known key; None when the key id (or algorithm) is unknown here."""
    key = keys.get(signature.key_id)
    if key is None or signature.algorithm != SignatureAlgorithm.HMAC_SHA256:
        return None
    expected = hmac.new(key, digest, hashlib.sha256).digest()
    return hmac.compare_digest(expected, signature.value)
