"""Hand-written Avro encoding of the envelope, the producer's hot path (pure).

The envelope's layout is fixed by ``schemas/auditline.events.Envelope.avsc``; the producer part
is constant per producer and encoded once. ``tests/unit/producer/test_wire.py`` holds these bytes
equal to fastavro's for generated envelopes, so a schema change that this module does not follow
fails the build.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from uuid import UUID

from auditline.codec.avro import avro_bytes, avro_long, avro_optional_string, avro_string
from auditline.events import ProducerInfo

__all__ = ["avro_bytes", "avro_long", "avro_optional_string", "avro_string"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_millis(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def producer_bytes(producer: ProducerInfo) -> bytes:
    location = producer.location
    return (
        avro_string(producer.service)
        + avro_string(producer.instance)
        + avro_string(location.country)
        + avro_optional_string(location.provider)
        + avro_optional_string(location.region)
    )


def envelope_head(
    event_id: UUID,
    event_time: datetime,
    *,
    producer: bytes,
    stream: bytes,
    sequence: int,
    prev_hash: str,
) -> bytes:
    """Envelope fields after ``signature`` up to ``prev_hash``; ``producer`` and ``stream``
    already encoded."""
    return b"".join(
        (
            b"\x48", str(event_id).encode(),  # a UUID string is always 36 chars: length 0x48
            avro_long(timestamp_millis(event_time)), producer, stream,
            avro_long(sequence), b"\x80\x01", prev_hash.encode(),
        )
    )  # fmt: skip


def hash_and_signature(digest_hex: str, signature: tuple[int, str, bytes] | None) -> bytes:
    """``hash`` and ``signature`` fields; signature as (algorithm index, key id, value)."""
    out = b"\x80\x01" + digest_hex.encode()
    if signature is None:
        return out + b"\x00"
    algorithm, key_id, value = signature
    return out + b"\x02" + avro_long(algorithm) + avro_string(key_id) + avro_bytes(value)


def envelope_tail(trace_id: str | None, tenant: str | None, schema_version: int) -> bytes:
    return avro_optional_string(trace_id) + avro_optional_string(tenant) + avro_long(schema_version)


class UuidSource:
    """Random (version 4) UUIDs from batched ``os.urandom`` reads (one syscall per 4,096)."""

    def __init__(self, batch: int = 4096) -> None:
        self.batch = batch
        self._pool = b""
        self._pos = 0
        self._pid = os.getpid()

    def __call__(self) -> UUID:
        if self._pos >= len(self._pool) or self._pid != os.getpid():  # refill, also after fork
            self._pool, self._pos, self._pid = os.urandom(16 * self.batch), 0, os.getpid()
        raw = int.from_bytes(self._pool[self._pos : self._pos + 16], "big")
        self._pos += 16
        return UUID(int=raw, version=4)
