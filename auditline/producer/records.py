"""Spool records and their framing on disk, and the receipts ``emit`` returns (pure)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from auditline.producer.transport import OutboundMessage

_FRAME = struct.Struct("<II")  # payload length, crc32 of payload
_FIXED = struct.Struct("<QQQ32sHHII")  # index, timestamp, sequence, hash, 4 lengths
FRAME_OVERHEAD = _FRAME.size + _FIXED.size


@dataclass(frozen=True, slots=True)
class SpoolRecord(OutboundMessage):
    """One sealed event: the message handed to the transport, and ``index``, its position in
    the spool, and ``hash``, the 32 raw bytes of the event hash."""

    index: int
    hash: bytes

    def frame(self) -> bytes:
        return encode_frame(self, self.topic.encode(), self.stream.encode())


@dataclass(frozen=True, slots=True)
class Receipt:
    """What ``emit`` accepted: the event's identity in its stream."""

    event_id: UUID
    stream: str
    sequence: int
    hash: str


def _slot_setters(cls: type, names: str) -> tuple[Callable[[object, object], None], ...]:
    """The slot descriptors' setters of ``cls``'s fields ``names``, in that order."""
    return tuple(getattr(cls, name).__set__ for name in names.split())


_NEW = object.__new__
_SET_RECORD = _slot_setters(SpoolRecord, "topic key value stream sequence timestamp_ms index hash")


def new_record(  # noqa: PLR0917 - SpoolRecord's fields, in their order
    topic: str, key: bytes, value: bytes, stream: str, sequence: int, timestamp_ms: int,
    index: int, digest: bytes,
) -> SpoolRecord:  # fmt: skip
    """``SpoolRecord(...)`` at half the cost, for the sealing loop: the fields set through their
    slots, without the frozen dataclass's ``object.__setattr__`` per field (the same value:
    there is no ``__post_init__`` and no default to apply)."""
    record = _NEW(SpoolRecord)
    s0, s1, s2, s3, s4, s5, s6, s7 = _SET_RECORD
    s0(record, topic)
    s1(record, key)
    s2(record, value)
    s3(record, stream)
    s4(record, sequence)
    s5(record, timestamp_ms)
    s6(record, index)
    s7(record, digest)
    return record


_SET_RECEIPT = _slot_setters(Receipt, "event_id stream sequence hash")


def new_receipt(event_id: UUID, stream: str, sequence: int, digest_hex: str) -> Receipt:
    """``Receipt(...)`` the way ``new_record`` makes a record."""
    receipt = _NEW(Receipt)
    s0, s1, s2, s3 = _SET_RECEIPT
    s0(receipt, event_id)
    s1(receipt, stream)
    s2(receipt, sequence)
    s3(receipt, digest_hex)
    return receipt


def encode_frame(record: SpoolRecord, topic: bytes, stream: bytes) -> bytes:
    """The record's frame, its topic and stream already encoded (the producer's batch loop
    encodes them once)."""
    value, key = record.value, record.key
    payload = b"".join(
        (
            _FIXED.pack(
                record.index, record.timestamp_ms, record.sequence, record.hash,
                len(topic), len(stream), len(key), len(value),
            ),
            topic, stream, key, value,
        )
    )  # fmt: skip
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def parse_frames(data: bytes) -> tuple[list[SpoolRecord], int]:
    """Records in ``data`` and the byte length of the intact prefix (a torn tail is left out)."""
    records: list[SpoolRecord] = []
    offset = 0
    while offset + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        start, end = offset + _FRAME.size, offset + _FRAME.size + length
        if end > len(data) or length < _FIXED.size:
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        records.append(_parse_payload(payload))
        offset = end
    return records, offset


def _parse_payload(payload: bytes) -> SpoolRecord:
    index, ts, sequence, digest, lt, ls, lk, lv = _FIXED.unpack_from(payload)
    pos = _FIXED.size
    topic = payload[pos : pos + lt].decode()
    pos += lt
    stream = payload[pos : pos + ls].decode()
    pos += ls
    key = payload[pos : pos + lk]
    pos += lk
    value = payload[pos : pos + lv]
    return SpoolRecord(topic, key, value, stream, sequence, ts, index, digest)
