"""Avro primitives written by hand (pure): zig-zag varints and length-prefixed strings, written
and read without fastavro on hot paths (the envelope, PredictionBatch columns, the chain's
canonical bytes)."""

from __future__ import annotations


def _zigzag(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_zigzag(n) for n in range(4096)]
MAX_VARINT_SHIFT = 63  # ten bytes: the longest Avro long


def avro_long(value: int) -> bytes:
    """Zig-zag varint, as Avro encodes int and long."""
    return _SMALL[value] if 0 <= value < 4096 else _zigzag(value)


def avro_bytes(value: bytes) -> bytes:
    return avro_long(len(value)) + value


def avro_string(value: str) -> bytes:
    return avro_bytes(value.encode())


def avro_optional_string(value: str | None) -> bytes:
    return b"\x00" if value is None else b"\x02" + avro_string(value)


class AvroReader:
    """Reads varints and sized values from ``data`` at ``pos``: ``EOFError`` where the data ends
    inside a value, ``ValueError`` on bytes no Avro writer produces."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def long(self) -> int:
        data, pos, shift, result = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data):
                raise EOFError("the data ends inside a varint")
            if shift > MAX_VARINT_SHIFT:
                raise ValueError("a varint longer than any Avro long")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return (result >> 1) ^ -(result & 1)
            shift += 7

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if size < 0:
            raise ValueError("a value of negative length")
        if end > len(self.data):
            raise EOFError("the data ends inside a value")
        chunk, self.pos = self.data[self.pos : end], end
        return chunk
