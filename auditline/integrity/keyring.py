"""Verification keys: a keyring file of public keys by key id, plus the closed-deployment HMAC key.

The keyring is JSON, written by ``auditline keys generate`` and safe to hand to auditors::

    {"keys": {"payments-2026": {"algorithm": "ed25519", "public_key": "<64 hex>",
                                "services": ["payments"]}}}

``services`` (optional) names the producer services a key may sign for; an event of another
service signed with it is a bad signature.

Rotation: a producer switches to a new key id; the old id stays in the keyring, so events signed
before the switch keep verifying. Removing a key id makes its events "signed with unknown key".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditline.errors import ConfigError
from auditline.integrity.signing import (
    Ed25519Signer,
    HmacSigner,
    Keys,
    PublicKey,
    Signer,
    VerifyKey,
)
from auditline.settings import AuditlineSettings

_ED25519 = "ed25519"


def read_keyring(path: Path) -> dict[str, PublicKey]:
    """The public keys of a keyring file, or a ``ConfigError`` naming what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the keyring {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"the keyring {path} is not JSON: {exc}") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f'the keyring {path} needs a "keys" object of key id -> key')
    return {key_id: _public_key(path, key_id, entry) for key_id, entry in entries.items()}


def _public_key(path: Path, key_id: str, entry: Any) -> PublicKey:
    if not isinstance(entry, dict) or entry.get("algorithm") != _ED25519:
        raise ConfigError(f'keyring {path}: key {key_id} needs "algorithm": "ed25519"')
    services = entry.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise ConfigError(f"keyring {path}: key {key_id}: services must be a list of names")
    try:
        return PublicKey(bytes.fromhex(str(entry.get("public_key", ""))), frozenset(services))
    except ValueError as exc:
        raise ConfigError(
            f"keyring {path}: key {key_id}: public_key must be 64 hex digits"
        ) from exc


def keyring_document(keys: dict[str, PublicKey]) -> dict[str, Any]:
    return {
        "keys": {
            key_id: {
                "algorithm": _ED25519,
                "public_key": key.raw.hex(),
                **({"services": sorted(key.services)} if key.services else {}),
            }
            for key_id, key in sorted(keys.items())
        }
    }


def write_keyring(path: Path, keys: dict[str, PublicKey]) -> None:
    path.write_text(json.dumps(keyring_document(keys), indent=2) + "\n", encoding="utf-8")


def verification_keys(settings: AuditlineSettings) -> Keys:
    """Every key this process verifies with: the keyring's public keys and the HMAC key if set."""
    keys: dict[str, VerifyKey] = {}
    if settings.keyring_path is not None:
        keys.update(read_keyring(settings.keyring_path))
    secret, key_id = settings.producer.signing_key, settings.producer.signing_key_id
    if secret is not None:
        keys[key_id] = HmacSigner.from_hex(key_id, secret.get_secret_value()).key
    return keys


def signer_for(settings: AuditlineSettings) -> Signer | None:
    """The producer's signer: Ed25519 from a key file, HMAC from a hex key, or none."""
    config = settings.producer
    if config.signing_key is not None and config.signing_key_file is not None:
        raise ConfigError(
            "set AUDITLINE_PRODUCER__SIGNING_KEY (HMAC) or __SIGNING_KEY_FILE (Ed25519), not both"
        )
    if config.signing_key_file is not None:
        return Ed25519Signer.from_file(config.signing_key_id, config.signing_key_file)
    if config.signing_key is None:
        if config.require_signing:
            raise ConfigError(
                "AUDITLINE_PRODUCER__REQUIRE_SIGNING is set but no SIGNING_KEY_FILE (Ed25519) "
                "or SIGNING_KEY (HMAC) is configured"
            )
        return None
    return HmacSigner.from_hex(config.signing_key_id, config.signing_key.get_secret_value())
