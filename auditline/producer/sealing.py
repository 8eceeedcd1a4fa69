"""Sealing: envelope, hash chain, signature and wire bytes of an event, in one Avro pass.

An Avro record's encoding is the concatenation of its fields' encodings, and the envelope is
every event's first field. So the body is encoded once, the small envelope twice (once with
``hash = ""`` and no signature for the hash input, once final), and

    hash  = SHA-256(prev_hash ‖ avro(envelope with hash "", signature null) ‖ avro(body))
    wire  = header ‖ avro(final envelope) ‖ avro(body)

is byte-for-byte what ``auditline.chain.compute_hash`` and the codec compute on the whole event
(a test holds the two to that).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from typing import Any

from fastavro import schemaless_writer

from auditline.catalogue import Catalogue
from auditline.contracts import AvroSchema, bundled_raw_schemas, bundled_schema, expand
from auditline.events import Event
from auditline.signing import HmacSigner

ENVELOPE = "auditline.events.Envelope"


@cache
def body_schema(event_schema: str) -> dict[str, Any]:
    """The event's schema without its envelope field (named types re-inlined where first used)."""
    raw = dict(bundled_raw_schemas())
    definition = raw[event_schema]
    name = f"{event_schema}__body"
    raw[name] = {
        **definition,
        "name": definition["name"] + "__body",
        "fields": definition["fields"][1:],
    }
    return AvroSchema.from_definition(name, expand(name, raw)).parsed


@dataclass(frozen=True, slots=True)
class Sealed:
    wire: bytes
    digest: bytes


class Sealer:
    """Turns validated events (envelope hash still a placeholder) into sealed wire bytes."""

    def __init__(self, catalogue: Catalogue, header_of: Any, signer: HmacSigner | None) -> None:
        self.catalogue = catalogue
        self.header_of = header_of  # model class -> framing header bytes
        self.signer = signer
        self.envelope_schema = bundled_schema(ENVELOPE).parsed

    def seal(self, event: Event) -> Sealed:
        record = event.model_dump()
        envelope = record.pop("envelope")
        body = _write(body_schema(event.SCHEMA), record)
        envelope["hash"] = ""
        envelope["signature"] = None
        digest = hashlib.sha256(bytes.fromhex(envelope["prev_hash"]))
        digest.update(_write(self.envelope_schema, envelope))
        digest.update(body)
        raw = digest.digest()
        envelope["hash"] = raw.hex()
        if self.signer is not None:
            envelope["signature"] = self.signer.sign_record(raw)
        wire = self.header_of(type(event)) + _write(self.envelope_schema, envelope) + body
        return Sealed(wire, raw)


def _write(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, schema, record)
    return buffer.getvalue()
