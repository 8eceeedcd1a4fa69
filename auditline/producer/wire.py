"""Hand-written Avro encoding of the envelope and event bodies, the producer's hot path (pure).

The envelope's layout is fixed by ``schemas/auditline.events.Envelope.avsc``; the producer part
is constant per producer and encoded once. ``tests/unit/producer/test_wire.py`` holds these bytes
equal to fastavro's for generated envelopes, so a schema change that this module does not follow
fails the build.

An event body is written by an encoder compiled once per schema (``body_encoder``): straight-line
Python reading the validated model's attributes, without the ``model_dump`` round trip and the
union resolution fastavro does per value (about 3 µs instead of 15 for a ``Prediction``).
``tests/unit/producer/test_body_encoder.py`` holds its bytes equal to fastavro's for generated
events of every kind; a schema construct it does not handle (a union of several non-null types,
``fixed``, ``float``, other logical types) leaves that schema to fastavro.
"""

from __future__ import annotations

import keyword
import os
import struct
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from auditline.codec.avro import avro_bytes, avro_long, avro_optional_string, avro_string
from auditline.events import ProducerInfo

__all__ = ["avro_bytes", "avro_long", "avro_optional_string", "avro_string"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal(): Avro dates count days from it
_LENGTHS = tuple(avro_long(n) for n in range(256))  # the length of a short string or array
_UUID_LENGTH = b"\x48"  # a UUID string is always 36 chars: length 0x48
_HASH_LENGTH = b"\x80\x01"  # a hex SHA-256 is always 64 chars


def varint(value: int) -> bytes:
    """``avro_long`` without a loop for values up to 2**27 (sequence numbers)."""
    n = (value << 1) ^ (value >> 63)
    if n < 0x80:
        return _LENGTHS[value] if value >= 0 else avro_long(value)
    if n < 0x4000:
        return bytes((n & 0x7F | 0x80, n >> 7))
    if n < 0x200000:
        return bytes((n & 0x7F | 0x80, n >> 7 & 0x7F | 0x80, n >> 14))
    if n < 0x10000000:
        return bytes((n & 0x7F | 0x80, n >> 7 & 0x7F | 0x80, n >> 14 & 0x7F | 0x80, n >> 21))
    return avro_long(value)


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
            _UUID_LENGTH, str(event_id).encode(), avro_long(timestamp_millis(event_time)),
            producer, stream, avro_long(sequence), _HASH_LENGTH, prev_hash.encode(),
        )
    )  # fmt: skip


def hash_and_signature(digest_hex: str, signature: tuple[int, str, bytes] | None) -> bytes:
    """``hash`` and ``signature`` fields; signature as (algorithm index, key id, value)."""
    out = _HASH_LENGTH + digest_hex.encode()
    if signature is None:
        return out + b"\x00"
    algorithm, key_id, value = signature
    return out + b"\x02" + avro_long(algorithm) + avro_string(key_id) + avro_bytes(value)


def envelope_tail(trace_id: str | None, tenant: str | None, schema_version: int) -> bytes:
    return avro_optional_string(trace_id) + avro_optional_string(tenant) + avro_long(schema_version)


class UuidSource:
    """Random (version 4) UUIDs from batched ``os.urandom`` reads (one syscall per 4,096).

    ``next_text`` gives the next id with its 36 ASCII bytes, the form the envelope carries, made
    for the whole batch at once (without ``UUID.__str__`` per id). A forked child refills before
    its first id (``_forget_after_fork``): parent and child never draw the same ids."""

    def __init__(self, batch: int = 4096) -> None:
        self.batch = batch
        self._pool = b""
        self._texts = b""
        self._pos = batch  # nothing drawn yet: the first call refills
        _SOURCES.add(self)

    def _refill(self) -> None:
        pool = bytearray(os.urandom(16 * self.batch))
        pool[6::16] = pool[6::16].translate(_VERSION_4)  # version 4 ...
        pool[8::16] = pool[8::16].translate(_RFC_4122)  # ... of the RFC 4122 variant
        digits = pool.hex().encode()  # 32 per id
        texts = bytearray(b"-" * (36 * self.batch))  # 8-4-4-4-12 digits, dashes between
        for source, target in enumerate(_DIGIT_PLACES):
            texts[target::36] = digits[source::32]
        self._pool, self._texts, self._pos = bytes(pool), bytes(texts), 0

    def forget(self) -> None:
        """Draw from a new batch from the next id on."""
        self._pos = self.batch

    def __call__(self) -> UUID:
        return self.next_text()[0]

    def next_text(self) -> tuple[UUID, bytes]:
        pos = self._pos
        if pos >= self.batch:
            self._refill()
            pos = 0
        self._pos = pos + 1
        uuid = object.__new__(UUID)  # what UUID(bytes=...) makes, without re-checking the bits
        object.__setattr__(uuid, "int", int.from_bytes(self._pool[16 * pos : 16 * pos + 16]))
        object.__setattr__(uuid, "is_safe", _SAFE_UNKNOWN)
        return uuid, self._texts[36 * pos : 36 * pos + 36]


_SOURCES: weakref.WeakSet[UuidSource] = weakref.WeakSet()
"""Every live ``UuidSource``, for ``_forget_after_fork``."""


def _forget_after_fork() -> None:
    """A forked child draws fresh ids: its copy of each pool is also its parent's. (Checked
    here, once per fork, rather than ``os.getpid()`` per id: a syscall on the emit path.)"""
    for source in list(_SOURCES):
        source.forget()


os.register_at_fork(after_in_child=_forget_after_fork)

_DIGIT_PLACES = [*range(8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36)]
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_RFC_4122 = bytes((b & 0x3F) | 0x80 for b in range(256))
_SAFE_UNKNOWN = UUID(int=0).is_safe


# -- event bodies ------------------------------------------------------------------------------

BodyEncoder = Callable[[Any], bytes]
"""Avro bytes of an event's body fields, read as attributes of the validated model."""


class _Unsupported(Exception):
    """A schema construct left to fastavro."""


def body_encoder(schema: Mapping[str, Any]) -> BodyEncoder | None:
    """An encoder of the fields of the record ``schema`` (fastavro-parsed: a named type inlined
    at its first use, referred to by full name after), compiled once; None when the schema has
    a construct left to fastavro. The encoder raises (``AttributeError``, ``KeyError``,
    ``TypeError`` ...) on values fastavro would refuse or handle differently (a naive datetime,
    a symbol the enum lacks): the caller then lets fastavro write or refuse the event."""
    compiler = _Compiler()
    try:
        compiler.fields(schema, "event", 1)
    except _Unsupported:
        return None
    source = "def encode(event):\n    out = []\n    w = out.append\n"
    source += "".join(compiler.lines) + "    return b''.join(out)\n"
    namespace = dict(compiler.constants)
    exec(compile(source, f"<body encoder of {schema.get('name')}>", "exec"), namespace)
    encode: BodyEncoder = namespace["encode"]
    return encode


def _millis(value: datetime) -> int:
    if value.tzinfo is None:  # fastavro reads a naive time in the local zone: left to it
        raise TypeError("a naive datetime")
    return timestamp_millis(value)


class _Compiler:
    """Python statements appending a value's Avro bytes to ``out`` (``w``), one schema node at
    a time; local names are numbered so that nested arrays and maps do not clash."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {
            "_long": avro_long, "_len": _LENGTHS, "_double": struct.Struct("<d").pack,
            "_millis": _millis, "_day0": _EPOCH_ORDINAL,
        }  # fmt: skip
        self.named: dict[str, Any] = {}
        self.compiling: set[str] = set()  # records being compiled: a recursive one is refused
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def line(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text + "\n")

    def fields(self, record: Mapping[str, Any], expr: str, indent: int) -> None:
        name = record.get("name", "")
        if name in self.compiling:
            raise _Unsupported(f"recursive record {name}")
        self.compiling.add(name)
        for field in record["fields"]:
            attribute = field["name"]
            if not attribute.isidentifier() or keyword.iskeyword(attribute):
                raise _Unsupported(f"field name {attribute!r}")
            var = self.name("v")
            self.line(indent, f"{var} = {expr}.{attribute}")
            self.value(field["type"], var, indent)
        self.compiling.discard(name)

    def value(self, schema: Any, var: str, indent: int) -> None:
        if isinstance(schema, list):
            self.union(schema, var, indent)
        elif isinstance(schema, str):
            if schema in self.named:
                self.value(self.named[schema], var, indent)
            else:
                self.primitive(schema, var, indent)
        elif schema.get("logicalType") is not None:
            self.logical(schema, var, indent)
        else:
            kind = schema["type"]
            if kind in ("record", "enum", "fixed"):
                self.named[schema["name"]] = schema
            if kind == "record":
                self.fields(schema, var, indent)
            elif kind == "enum":
                table = self.name("_enum")
                self.constants[table] = {s: avro_long(i) for i, s in enumerate(schema["symbols"])}
                self.line(indent, f"w({table}[{var}])")
            elif kind in ("array", "map"):
                self.block(schema, var, indent)
            else:
                self.primitive(kind, var, indent)

    def union(self, branches: list[Any], var: str, indent: int) -> None:
        if len(branches) != 2 or "null" not in branches or branches[0] == branches[1]:
            raise _Unsupported("a union other than [null, T]")
        null = branches.index("null")
        self.line(indent, f"if {var} is None:")
        self.line(indent + 1, f"w({avro_long(null)!r})")
        self.line(indent, "else:")
        self.line(indent + 1, f"w({avro_long(1 - null)!r})")
        self.value(branches[1 - null], var, indent + 1)

    def block(self, schema: Mapping[str, Any], var: str, indent: int) -> None:
        """An array or a map: one block of every item, then the end marker (fastavro's way)."""
        self.line(indent, f"if {var}:")
        self.line(indent + 1, f"w(_long(len({var})))")
        item = self.name("i")
        if schema["type"] == "map":
            key = self.name("k")
            self.line(indent + 1, f"for {key}, {item} in {var}.items():")
            self.string(key, indent + 2)
            self.value(schema["values"], item, indent + 2)
        else:
            self.line(indent + 1, f"for {item} in {var}:")
            self.value(schema["items"], item, indent + 2)
        self.line(indent, "w(b'\\x00')")

    def logical(self, schema: Mapping[str, Any], var: str, indent: int) -> None:
        kind = (schema["logicalType"], schema["type"])
        if kind == ("timestamp-millis", "long"):
            self.line(indent, f"w(_long(_millis({var})))")
        elif kind == ("date", "int"):
            self.line(indent, f"w(_long({var}.toordinal() - _day0))")
        elif kind == ("uuid", "string"):
            self.line(indent, f"{var} = str({var})")
            self.string(var, indent)
        else:
            raise _Unsupported(f"logical type {kind}")

    def primitive(self, kind: str, var: str, indent: int) -> None:
        if kind == "string":
            self.string(var, indent)
        elif kind in ("int", "long"):
            self.line(indent, f"w(_long({var}))")
        elif kind == "double":
            self.line(indent, f"w(_double({var}))")
        elif kind == "boolean":
            self.line(indent, f"w(b'\\x01' if {var} else b'\\x00')")
        elif kind == "bytes":
            self.line(indent, f"w(_long(len({var})))")
            self.line(indent, f"w({var})")
        elif kind != "null":  # null: no bytes
            raise _Unsupported(f"type {kind}")

    def string(self, var: str, indent: int) -> None:
        encoded = self.name("b")
        size = self.name("n")
        self.line(indent, f"{encoded} = {var}.encode()")
        self.line(indent, f"{size} = len({encoded})")
        self.line(indent, f"w(_len[{size}] if {size} < 256 else _long({size}))")
        self.line(indent, f"w({encoded})")
