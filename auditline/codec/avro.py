"""Avro primitives written by hand (pure): zig-zag varints and length-prefixed strings, for the
encoders that build bytes without fastavro on hot paths (the envelope, PredictionBatch columns)."""

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


def avro_long(value: int) -> bytes:
    """Zig-zag varint, as Avro encodes int and long."""
    return _SMALL[value] if 0 <= value < 4096 else _zigzag(value)


def avro_bytes(value: bytes) -> bytes:
    return avro_long(len(value)) + value


def avro_string(value: str) -> bytes:
    return avro_bytes(value.encode())


def avro_optional_string(value: str | None) -> bytes:
    return b"\x00" if value is None else b"\x02" + avro_string(value)
