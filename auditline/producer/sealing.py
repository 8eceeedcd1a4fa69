"""Sealing: an event's envelope, hash-chain link, signature and wire bytes, in one Avro pass.

An Avro record's encoding is the concatenation of its fields' encodings and the envelope is
every event's first field, so the body is encoded once (fastavro) and the envelope by hand
(``wire``), with

    hash = SHA-256(prev_hash ‖ avro("") ‖ avro(null) ‖ head ‖ tail ‖ body)
    wire = header ‖ avro(hash) ‖ avro(signature) ‖ head ‖ tail ‖ body

(contracts layout 2: ``hash`` and ``signature`` are the envelope's first fields)

which is byte for byte what ``auditline.integrity.chain.compute_hash`` and the codec compute on
the whole event (``tests/unit/producer/test_sealing.py`` holds them to it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from io import BytesIO
from typing import Any
from uuid import UUID

from fastavro import schemaless_writer

from auditline.codec.columns import prediction_batch_body
from auditline.contracts import CONTRACTS_VERSION, AvroSchema, bundled_raw_schemas, expand
from auditline.events import Event, PredictionBatch, ProducerInfo
from auditline.integrity.chain import EMPTY_HASH_AND_NO_SIGNATURE
from auditline.integrity.signing import Signer
from auditline.producer import wire

_ALGORITHM_INDEX = {"hmac_sha256": 1, "ed25519": 2}  # symbols of the SignatureAlgorithm enum


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


@dataclass(frozen=True, slots=True)
class Link:
    """Where an event sits: identity, time and its place in the producer stream."""

    event_id: UUID
    event_time: datetime
    stream: bytes  # Avro-encoded stream id
    sequence: int
    prev_hash: str
    trace_id: str | None = None
    tenant: str | None = None


class Sealer:
    def __init__(
        self,
        producer: ProducerInfo,
        header_of: Callable[[type[Event]], bytes],
        signer: Signer | None,
    ) -> None:
        self.producer_bytes = wire.producer_bytes(producer)
        self.header_of = header_of
        self.signer = signer

    def seal(self, event: Event, link: Link) -> Sealed:
        if isinstance(event, PredictionBatch):  # columns packed by hand (codec/columns.py)
            body = prediction_batch_body(event)
        else:
            buffer = BytesIO()
            schema = body_schema(event.SCHEMA)
            schemaless_writer(buffer, schema, event.model_dump(exclude={"envelope"}))
            body = buffer.getvalue()
        head = wire.envelope_head(
            link.event_id,
            link.event_time,
            producer=self.producer_bytes,
            stream=link.stream,
            sequence=link.sequence,
            prev_hash=link.prev_hash,
        )
        tail = wire.envelope_tail(link.trace_id, link.tenant, CONTRACTS_VERSION)
        hasher = hashlib.sha256(bytes.fromhex(link.prev_hash))
        hasher.update(EMPTY_HASH_AND_NO_SIGNATURE + head + tail + body)
        digest = hasher.digest()
        signature = None
        if self.signer is not None:
            index = _ALGORITHM_INDEX[self.signer.algorithm]
            signature = (index, self.signer.key_id, self.signer.mac(digest))
        sealed = b"".join(
            (
                self.header_of(type(event)),
                wire.hash_and_signature(digest.hex(), signature),
                head,
                tail,
                body,
            )
        )
        return Sealed(sealed, digest)
