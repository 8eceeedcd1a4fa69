"""Hash chain over canonical Avro bytes: the tamper evidence of every producer stream.

``hash = SHA-256(bytes(prev_hash) || avro(event with hash = "" and signature = null))``. The
Avro bytes are the schemaless body under the bundled schema, so any change to any field, envelope
included, changes the hash; the chain links each event to its predecessor in the stream.
"""

from __future__ import annotations

import hashlib
from io import BytesIO
from typing import TypeVar

from fastavro import schemaless_writer

from auditline.codec.avro import AvroReader
from auditline.codec.body import to_record
from auditline.contracts import bundled_schema
from auditline.events import Event

E = TypeVar("E", bound=Event)
EMPTY_HASH_AND_NO_SIGNATURE = b"\x00\x00"  # string "" then union branch 0 (null)


def canonical_bytes(event: Event) -> bytes:
    """The event's Avro body with ``hash`` blanked and ``signature`` removed."""
    record = to_record(event)
    record["envelope"]["hash"] = ""
    record["envelope"]["signature"] = None
    buffer = BytesIO()
    schemaless_writer(buffer, bundled_schema(event.SCHEMA).parsed, record)
    return buffer.getvalue()


def canonical_from_body(body: bytes | memoryview) -> bytes:
    """``canonical_bytes`` of the event whose Avro body (under the bundled schema) is ``body``.

    The envelope is every event's first field, so ``hash`` and ``signature`` sit at a position
    found by skipping the fields before them; replacing those bytes gives the canonical form
    without decoding and re-encoding the event (integrity checks on the stream's hot path).
    Raises ``ValueError`` on bytes that end inside the envelope.
    """
    reader = _Reader(bytes(body))  # the same object when ``body`` is bytes
    try:
        # event_id, event_time, producer (service, instance, location: country, provider?,
        # region?), stream, sequence, prev_hash
        for kind in "sLsssoosLs":
            reader.skip(kind)
        start = reader.pos
        reader.skip("s")  # hash
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
