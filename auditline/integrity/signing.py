"""Event signatures over the event hash: Ed25519 (public verification) or HMAC-SHA256 (closed).

A signature proves the event came from a holder of the signing key; the hash chain proves nothing
was changed or removed afterwards. With **Ed25519** producers hold a private key and verifiers
(workers, auditors) hold only public keys from a keyring (``auditline.integrity.keyring``): a
verifier can check a signature but cannot make one. **HMAC-SHA256** stays for closed deployments
where whoever verifies may also sign (the key is shared).

Verification keys are a mapping key id → key: ``bytes`` is an HMAC secret, a ``PublicKey`` an
Ed25519 public key. Key ids let keys rotate: old events keep verifying with their old key id.
``cryptography`` is imported here only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditline.errors import ConfigError
from auditline.events import Signature, SignatureAlgorithm

ED25519_KEY_BYTES = 32


class Signer(Protocol):
    """Makes the signature value of an event hash under one key id."""

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> SignatureAlgorithm: ...

    def mac(self, digest: bytes) -> bytes:
        """The signature value of ``digest`` (the producer's hot path)."""
        ...


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key (32 raw bytes): verifies, never signs.

    ``services``: the producer services it may sign for (empty: any), so one producer's key
    cannot vouch for another producer's history.
    """

    raw: bytes
    services: frozenset[str] = frozenset()

    def may_sign_for(self, service: str) -> bool:
        return not self.services or service in self.services

    def __post_init__(self) -> None:
        if len(self.raw) != ED25519_KEY_BYTES:
            raise ConfigError(f"an Ed25519 public key has 32 bytes, not {len(self.raw)}")

    def verifies(self, digest: bytes, value: bytes) -> bool:
        try:
            _loaded(self.raw).verify(value, digest)
        except InvalidSignature:
            return False
        return True


@lru_cache(maxsize=1024)
def _loaded(raw: bytes) -> Ed25519PublicKey:
    """The key object of raw public bytes, loaded once (verification is the hot path)."""
    return Ed25519PublicKey.from_public_bytes(raw)


VerifyKey = bytes | PublicKey
Keys = Mapping[str, VerifyKey]


@dataclass(frozen=True)
class HmacSigner:
    key_id: str
    key: bytes = field(repr=False)
    algorithm: SignatureAlgorithm = SignatureAlgorithm.HMAC_SHA256

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
        return Signature(algorithm=self.algorithm, key_id=self.key_id, value=self.mac(digest))

    def mac(self, digest: bytes) -> bytes:
        return hmac.new(self.key, digest, hashlib.sha256).digest()


class Ed25519Signer:
    """Signs with an Ed25519 private key; ``public_key`` is what verifiers get."""

    algorithm = SignatureAlgorithm.ED25519

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.key_id = key_id
        self._key = private_key

    @classmethod
    def generate(cls, key_id: str) -> Ed25519Signer:
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, key_id: str, path: Path) -> Ed25519Signer:
        """A PEM (PKCS#8) private key file, as ``auditline keys generate`` writes it."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the signing key file {path}: {exc.strerror}; "
                "create one with `auditline keys generate`"
            ) from exc
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{path} is not an unencrypted PEM private key: "
                "create one with `auditline keys generate`"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key_id, key)

    def private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> PublicKey:
        raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return PublicKey(raw)

    def sign(self, digest: bytes) -> Signature:
        return Signature(algorithm=self.algorithm, key_id=self.key_id, value=self.mac(digest))

    def mac(self, digest: bytes) -> bytes:
        return self._key.sign(digest)


def signature_valid(signature: Signature, digest: bytes, keys: Keys) -> bool | None:
    """True/False for a known key; None when the key id is unknown here.

    A signature whose algorithm does not match the key's kind is invalid (False): an HMAC value
    made with a public key as secret must not pass as an Ed25519 signature, nor the reverse.
    """
    key = keys.get(signature.key_id)
    if key is None:
        return None
    if isinstance(key, PublicKey):
        return signature.algorithm == SignatureAlgorithm.ED25519 and key.verifies(
            digest, signature.value
        )
    if signature.algorithm != SignatureAlgorithm.HMAC_SHA256:
        return False
    expected = hmac.new(key, digest, hashlib.sha256).digest()
    return hmac.compare_digest(expected, signature.value)
