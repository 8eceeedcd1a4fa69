"""Hash chain over canonical Avro bytes: the tamper evidence of every producer stream.

``hash = SHA-256(bytes(prev_hash) || avro(event with hash = "" and signature = null))``. The
Avro bytes are the schemaless body in the contracts layout the envelope's ``schema_version``
names, so any change to any field, envelope included, changes the hash; the chain links each
event to its predecessor in the stream.

In layout 2 (``auditline.contracts.CONTRACTS_VERSION``) ``hash`` and ``signature`` are the
body's first fields, so the hashed bytes are the body after them: ``00 00`` (an empty string and
the null branch) followed by ``body[len(hash) + len(signature):]``, found from two length bytes
and, when signed, three varints, never by parsing the record. Layout 1 (hash and signature after
``prev_hash``) is still read: its canonical form needs the envelope's fields before them skipped.
"""

from __future__ import annotations

import hashlib
from io import BytesIO
from typing import TypeVar

from fastavro import schemaless_writer

from auditline.codec.avro import AvroReader
from auditline.codec.body import to_record
from auditline.contracts import CONTRACTS_VERSION, bundled_schema
from auditline.events import Event

E = TypeVar("E", bound=Event)
EMPTY_HASH_AND_NO_SIGNATURE = b"\x00\x00"  # string "" then union branch 0 (null)
_HASH_FIELD = b"\x80\x01"  # the length (64) of a hex SHA-256, zig-zag varint
_UNSIGNED_START = len(_HASH_FIELD) + 64 + 1  # hash, then union branch 0


def canonical_bytes(event: Event) -> bytes:
    """The event's Avro body with ``hash`` blanked and ``signature`` removed, in its layout."""
    record = to_record(event)
    record["envelope"]["hash"] = ""
    record["envelope"]["signature"] = None
    buffer = BytesIO()
    schema = bundled_schema(event.SCHEMA, event.envelope.schema_version)
    schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def canonical_from_body(body: bytes | memoryview, version: int = CONTRACTS_VERSION) -> bytes:
    """``canonical_bytes`` of the event whose Avro body in layout ``version`` is ``body``.

    Replaces the bytes of ``hash`` and ``signature`` without decoding and re-encoding the event
    (integrity checks on the stream's hot path). Raises ``ValueError`` on bytes that end inside
    the envelope or, in layout 2, do not start with a 64-character hash.
    """
    if version == CONTRACTS_VERSION:
        if body[:2] != _HASH_FIELD or len(body) < _UNSIGNED_START:
            raise ValueError("body does not start with a 64-character hash")
        if body[_UNSIGNED_START - 1] == 0:  # unsigned: the common case, no parsing at all
            return EMPTY_HASH_AND_NO_SIGNATURE + bytes(body[_UNSIGNED_START:])
        reader = _Reader(bytes(body))
        reader.pos = _UNSIGNED_START - 1
        return _replace(reader, body, start=0)
    reader = _Reader(bytes(body))  # the same object when ``body`` is bytes
    try:
        # event_id, event_time, producer (service, instance, location: country, provider?,
        # region?), stream, sequence, prev_hash
        for kind in "sLsssoosLs":
            reader.skip(kind)
        start = reader.pos
        reader.skip("s")  # hash
    except EOFError as exc:
        raise ValueError("body ends inside the envelope") from exc
    return _replace(reader, body, start=start)


def _replace(reader: _Reader, body: bytes | memoryview, *, start: int) -> bytes:
    """``body`` with ``[start, end of signature)`` as an empty hash and no signature; the reader
    stands on the signature's union branch."""
    try:
        if reader.long():  # signature: union branch 1 = Signature(algorithm, key_id, value)
            for kind in "Lss":
                reader.skip(kind)
    except EOFError as exc:
        raise ValueError("body ends inside the envelope") from exc
    if reader.pos > len(body):
        raise ValueError("body ends inside the envelope")
    return bytes(body[:start]) + EMPTY_HASH_AND_NO_SIGNATURE + bytes(body[reader.pos :])


class _Reader(AvroReader):
    """Skips Avro values (zig-zag varints, length-prefixed strings)."""

    def skip(self, kind: str) -> None:
        """Skip a long (``L``), a string or bytes (``s``/``S``), an optional string (``o``)."""
        if kind == "o" and not self.long():
            return
        length = self.long()
        if kind != "L":
            if length < 0:
                raise ValueError("negative string length")
            self.pos += length


def compute_hash(event: Event, canonical: bytes | None = None) -> str:
    """The hash this event must carry given its ``prev_hash`` and content.

    ``canonical``: the event's canonical bytes when the caller already has them (from the wire,
    ``canonical_from_body``); otherwise they are computed from the event.
    """
    digest = hashlib.sha256(bytes.fromhex(event.envelope.prev_hash))
    digest.update(canonical_bytes(event) if canonical is None else canonical)
    return digest.hexdigest()


def seal(event: E) -> E:
    """A copy of ``event`` whose envelope carries its computed hash."""
    envelope = event.envelope.model_copy(update={"hash": compute_hash(event)})
    return event.model_copy(update={"envelope": envelope})


def hash_matches(event: Event) -> bool:
    """True when the event's content still produces the hash it carries."""
    return compute_hash(event) == event.envelope.hash
