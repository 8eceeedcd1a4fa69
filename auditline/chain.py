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

from auditline.codec.body import to_record
from auditline.contracts import bundled_schema
from auditline.events import Event

E = TypeVar("E", bound=Event)


def canonical_bytes(event: Event) -> bytes:
    """The event's Avro body with ``hash`` blanked and ``signature`` removed."""
    record = to_record(event)
    record["envelope"]["hash"] = ""
    record["envelope"]["signature"] = None
    buffer = BytesIO()
    schemaless_writer(buffer, bundled_schema(event.SCHEMA).parsed, record)
    return buffer.getvalue()


def compute_hash(event: Event) -> str:
    """The hash this event must carry given its ``prev_hash`` and content."""
    digest = hashlib.sha256(bytes.fromhex(event.envelope.prev_hash))
    digest.update(canonical_bytes(event))
    return digest.hexdigest()


def seal(event: E) -> E:
    """A copy of ``event`` whose envelope carries its computed hash."""
    envelope = event.envelope.model_copy(update={"hash": compute_hash(event)})
    return event.model_copy(update={"envelope": envelope})


def hash_matches(event: Event) -> bool:
    """True when the event's content still produces the hash it carries."""
    return compute_hash(event) == event.envelope.hash
