"""Sealing: an event's envelope, hash-chain link, signature and wire bytes, in one Avro pass.

An Avro record's encoding is the concatenation of its fields' encodings and the envelope is
every event's first field, so the body is encoded once (an encoder compiled per schema,
``wire.body_encoder``, or fastavro) and the envelope by hand (``wire``), with

    hash = SHA-256(prev_hash ‖ avro("") ‖ avro(null) ‖ head ‖ tail ‖ body)
    wire = header ‖ avro(hash) ‖ avro(signature) ‖ head ‖ tail ‖ body

(contracts layout 2: ``hash`` and ``signature`` are the envelope's first fields)

which is byte for byte what ``auditline.integrity.chain.compute_hash`` and the codec compute on
the whole event (``tests/unit/producer/test_sealing.py`` holds them to it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from io import BytesIO
from typing import Any, NamedTuple
from uuid import UUID

from fastavro import schemaless_writer

from auditline.codec.columns import prediction_batch_body
from auditline.contracts import CONTRACTS_VERSION, AvroSchema, bundled_raw_schemas, expand
from auditline.events import Event, PredictionBatch, ProducerInfo
from auditline.integrity.chain import EMPTY_HASH_AND_NO_SIGNATURE
from auditline.integrity.signing import HmacSigner, Signer
from auditline.producer import wire
from auditline.producer.records import Receipt, SpoolRecord, encode_frame, new_receipt, new_record

_ALGORITHM_INDEX = {"hmac_sha256": 1, "ed25519": 2}  # symbols of the SignatureAlgorithm enum
_HASH_LENGTH = b"\x80\x01"  # a hex SHA-256 is always 64 chars
_UUID_LENGTH = b"\x48"  # a UUID string is always 36 chars
_NO_SIGNATURE = b"\x00"
_TAIL = wire.envelope_tail(None, None, CONTRACTS_VERSION)  # no trace id, no tenant


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


def fastavro_body(event: Event) -> bytes:
    """The body as fastavro writes ``model_dump`` (the reference, and the way for what the
    compiled encoders leave out)."""
    buffer = BytesIO()
    schemaless_writer(buffer, body_schema(event.SCHEMA), event.model_dump(exclude={"envelope"}))
    return buffer.getvalue()


def body_writer(model: type[Event]) -> Callable[[Event], bytes]:
    """How the bodies of ``model`` are written: PredictionBatch columns by hand
    (``codec.columns``), other kinds by their compiled encoder, falling back to fastavro for
    a value the encoder does not take (fastavro then writes it, or refuses it as before)."""
    if model is PredictionBatch:
        return _prediction_batch_body
    compiled = wire.body_encoder(body_schema(model.SCHEMA))
    if compiled is None:
        return fastavro_body
    encode: Callable[[Any], bytes] = compiled

    def write(event: Event) -> bytes:
        try:
            return encode(event)
        except Exception:  # noqa: BLE001 - a value only fastavro takes (or refuses)
            return fastavro_body(event)

    return write


def _prediction_batch_body(event: Event) -> bytes:
    if not isinstance(event, PredictionBatch):
        raise TypeError(f"expected a PredictionBatch, got {type(event).__name__}")
    return prediction_batch_body(event)


@dataclass(frozen=True, slots=True)
class EventKind:
    """What every event of one model shares on its way out of a producer."""

    model: type[Event]
    topic: str
    topic_bytes: bytes
    stream: str
    key: bytes  # the stream id, the message key (one stream, one partition: its order kept)
    origin: bytes  # producer and stream, Avro-encoded as the envelope carries them
    header: bytes  # the codec's framing header
    write: Callable[[Event], bytes]  # the body's Avro bytes


Draft = tuple[bytes, int | None, bytes]
"""An event before its place in the chain: body bytes, event time (ms; None: now), the
envelope's tail (``Sealer.tail``)."""


class Chained(NamedTuple):
    """Drafts sealed in a row: the spool records (the messages to send), their frames, and the
    receipts (a named tuple: one is made per ``emit``, for less than a dataclass costs)."""

    records: list[SpoolRecord]
    frames: list[bytes]
    receipts: list[Receipt]


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
    """Seals events of one producer: ``seal`` one event at a given ``Link``, ``chain`` the
    producer's drafts after a stream's head."""

    def __init__(
        self,
        producer: ProducerInfo,
        header_of: Callable[[type[Event]], bytes],
        signer: Signer | None,
    ) -> None:
        self.producer_bytes = wire.producer_bytes(producer)
        self.header_of = header_of
        self.signer = signer
        self._mac: Callable[[bytes], bytes] | None = None
        self._signature_head = _NO_SIGNATURE
        if signer is not None:
            self._mac = _HmacSha256(signer.key) if isinstance(signer, HmacSigner) else signer.mac
            index = _ALGORITHM_INDEX[signer.algorithm]
            self._signature_head = b"\x02" + wire.avro_long(index) + wire.avro_string(signer.key_id)
        self._writers: dict[type[Event], Callable[[Event], bytes]] = {}
        self._ids = wire.UuidSource()
        self._last_time = (0, wire.avro_long(0))  # the last event time sealed, encoded

    def kind(self, model: type[Event], topic: str, stream: str, header: bytes) -> EventKind:
        """What the events of ``model`` share: made once per kind by the producer."""
        return EventKind(
            model, topic, topic.encode(), stream, stream.encode(),
            self.producer_bytes + wire.avro_string(stream), header, self.body_writer(model),
        )  # fmt: skip

    def chain(
        self, kind: EventKind, drafts: list[Draft], sequence: int, prev_hash: str, index: int
    ) -> Chained:
        """Seal ``drafts`` in order after the stream's event ``sequence - 1`` of hash
        ``prev_hash``, as spool records from ``index`` on (one caller at a time: the producer
        holds its emit lock)."""
        prev, prev_hex = bytes.fromhex(prev_hash), prev_hash.encode()
        now_ms = time.time_ns() // 1_000_000
        records: list[SpoolRecord] = []
        frames: list[bytes] = []
        receipts: list[Receipt] = []
        new_id, seal = self._ids.next_text, self._seal_hashed
        topic, topic_bytes, key, stream = kind.topic, kind.topic_bytes, kind.key, kind.stream
        origin, header = kind.origin, kind.header
        last_time, time_bytes = self._last_time  # events in a row mostly share their millisecond
        for body, millis, tail in drafts:
            event_id, id_text = new_id()
            when = now_ms if millis is None else millis
            if when != last_time:
                last_time, time_bytes = when, wire.avro_long(when)
            hashed = _hashed(id_text, time_bytes, origin, sequence, prev_hex, tail, body)
            sealed, prev, digest_hex = seal(header, prev, hashed)
            prev_hex = digest_hex.encode()
            record = new_record(topic, key, sealed, stream, sequence, now_ms, index, prev)
            records.append(record)
            frames.append(encode_frame(record, topic_bytes, key))
            receipts.append(new_receipt(event_id, stream, sequence, digest_hex))
            sequence += 1
            index += 1
        self._last_time = last_time, time_bytes
        return Chained(records, frames, receipts)

    def body(self, event: Event) -> bytes:
        """The event's body fields in Avro."""
        return self.body_writer(type(event))(event)

    def body_writer(self, model: type[Event]) -> Callable[[Event], bytes]:
        """How bodies of ``model`` are written (made once per kind, see ``body_writer``)."""
        writer = self._writers.get(model)
        if writer is None:
            writer = self._writers[model] = body_writer(model)
        return writer

    def seal(self, event: Event, link: Link) -> Sealed:
        """One event at ``link`` (what ``chain`` does for each draft)."""
        hashed = _hashed(
            str(link.event_id).encode(), wire.avro_long(wire.timestamp_millis(link.event_time)),
            self.producer_bytes + link.stream, link.sequence, link.prev_hash.encode(),
            self.tail(link.trace_id, link.tenant), self.body(event),
        )  # fmt: skip
        prev = bytes.fromhex(link.prev_hash)
        sealed, digest, _ = self._seal_hashed(self.header_of(type(event)), prev, hashed)
        return Sealed(sealed, digest)

    @staticmethod
    def tail(trace_id: str | None, tenant: str | None) -> bytes:
        if trace_id is None and tenant is None:
            return _TAIL
        return wire.envelope_tail(trace_id, tenant, CONTRACTS_VERSION)

    def _seal_hashed(self, header: bytes, prev: bytes, hashed: bytes) -> tuple[bytes, bytes, str]:
        """The wire bytes, raw hash and hex hash of the event after the one whose raw hash is
        ``prev``; ``hashed``: its bytes after ``hash`` and ``signature`` (``_hashed``)."""
        hasher = hashlib.sha256(prev + EMPTY_HASH_AND_NO_SIGNATURE)
        hasher.update(hashed)
        digest = hasher.digest()
        digest_hex = digest.hex()
        signature = self._signature_head
        if self._mac is not None:
            value = self._mac(digest)
            signature += wire.avro_long(len(value)) + value
        sealed = b"".join((header, _HASH_LENGTH, digest_hex.encode(), signature, hashed))
        return sealed, digest, digest_hex


def _hashed(  # noqa: PLR0917 - the hashed parts, in their order on the wire
    event_id: bytes, event_time: bytes, origin: bytes, sequence: int, prev_hex: bytes,
    tail: bytes, body: bytes,
) -> bytes:  # fmt: skip
    """The hashed bytes after the envelope's ``hash`` and ``signature``: its fields up to
    ``prev_hash`` (``event_id`` as its 36 ASCII bytes, ``event_time`` encoded, ``origin`` the
    encoded producer and stream, ``prev_hex`` the previous hash), its ``tail``
    (``Sealer.tail``), then the body."""
    return b"".join(
        (_UUID_LENGTH, event_id, event_time, origin, wire.varint(sequence), _HASH_LENGTH,
         prev_hex, tail, body)
    )  # fmt: skip


_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))
_SHA256_BLOCK = 64


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) with the padded key's hash states made once: the same values as
    ``HmacSigner.mac`` at a third of its cost (``hmac.new`` pads and hashes the key per call)."""

    def __init__(self, key: bytes) -> None:
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\x00")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()
