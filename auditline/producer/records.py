"""Spool records and their framing on disk (pure)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

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
