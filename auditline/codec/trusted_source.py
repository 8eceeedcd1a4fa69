"""The pieces a compiled trusted reader is written with (``auditline.codec.trusted``): the lines
that read Avro's varints and sized values inline, and what every reader may call (pure).

A reader never checks that a value ends inside the body: positions only grow, so a value that
runs past the end leaves the position past it, and the reader's last check (the record ends
where the body does) or the next read fails.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, SafeUUID

from pydantic import BaseModel
from pydantic_core import SchemaValidator, ValidationError, core_schema


class Invalid(Exception):
    """The body does not read, or its record fails a check (the codec then says why)."""


_MASK64 = (1 << 64) - 1
PATTERN_MEMORY = 4096
_ONE_BYTE: list[int | None] = [(b >> 1) ^ -(b & 1) if b < 128 else None for b in range(256)]
"""A varint's value where its first byte is all of it, else None."""
_ONE_BYTE_SIZE = [b >> 1 if b < 128 and not b & 1 else -1 for b in range(256)]
"""A size's value where its first byte is all of it and it is not negative, else -1."""


def zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint at ``pos`` and the position after it, as fastavro's reader reads it (in
    64 bits); longer than ten bytes, ``Invalid``."""
    byte = data[pos]
    value, shift, pos = byte & 0x7F, 7, pos + 1
    while byte & 0x80:
        if shift > 63:
            raise Invalid("a varint longer than any Avro long")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        shift, pos = shift + 7, pos + 1
    value &= _MASK64
    return (value >> 1) ^ -(value & 1), pos


def read_sized(data: bytes, pos: int) -> tuple[bytes, int]:
    """A length-prefixed value at ``pos`` and the position after it; fastavro refuses a
    negative size (one past the end is left to the reader's last check)."""
    size, pos = read_long(data, pos)
    if size < 0:
        raise Invalid("a value of negative size")
    return data[pos : pos + size], pos + size


@functools.lru_cache(maxsize=256)
def read_doubles(count: int) -> Callable[[bytes, int], tuple[float, ...]]:
    """``count`` little-endian doubles at a position, as fastavro reads each of them."""
    unpack: Callable[[bytes, int], tuple[float, ...]] = struct.Struct(f"<{count}d").unpack_from
    return unpack


_new = object.__new__
_slots = BaseModel.__dict__
GLOBALS: dict[str, Any] = {
    "_long": read_long, "_sized": read_sized, "_Invalid": Invalid, "_new": _new,
    "_ONE_BYTE": _ONE_BYTE, "_ONE_BYTE_SIZE": _ONE_BYTE_SIZE, "_BOOLEAN": (False, True),
    "_sd": _slots["__dict__"].__set__, "_sf": _slots["__pydantic_fields_set__"].__set__,
    "_se": _slots["__pydantic_extra__"].__set__, "_sp": _slots["__pydantic_private__"].__set__,
    "_UUID": UUID, "_uuid_int": UUID.__dict__["int"].__set__, "_UNKNOWN": SafeUUID.unknown,
    "_uuid_safe": UUID.__dict__["is_safe"].__set__, "_EPOCH": datetime(1970, 1, 1, tzinfo=UTC),
    "_MILLISECOND": timedelta(milliseconds=1),
    "_fromordinal": date.fromordinal, "_DAYS_SHIFT": date(1970, 1, 1).toordinal(),
    "_double": struct.Struct("<d").unpack_from, "_doubles": read_doubles,
}  # fmt: skip
"""What every compiled reader may call (fastavro's own conversions for the logical types, and
the slots of a pydantic model as validation sets them)."""


class Pattern:
    """A pattern matched by pydantic-core itself (its regex engine, its anchors), remembering
    values that matched (countries and jurisdictions repeat; hashes do not, and are not kept
    past the memory's bound)."""

    def __init__(self, pattern: str) -> None:
        self.validator = SchemaValidator(core_schema.str_schema(pattern=pattern))
        self.memory: set[str] = set()

    def __call__(self, value: str) -> bool:
        try:
            self.validator.validate_python(value)
        except ValidationError:
            return False
        if len(self.memory) < PATTERN_MEMORY:
            self.memory.add(value)
        return True


@dataclass
class Source:
    """A reader's source as it is written, and the constants it names."""

    lines: list[str] = field(default_factory=list)
    constants: dict[str, Any] = field(default_factory=dict)
    memories: list[str] = field(default_factory=list)
    count: int = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def constant(self, value: Any) -> str:
        name = self.name("_c")
        self.constants[name] = value
        return name

    def memory(self) -> str:
        """A global of the reader holding the last (bytes, value, size) of a remembered record:
        at first an empty tuple of prefixes, which no body starts with."""
        name = self.constant(((), None, 0))
        self.memories.append(name)
        return name

    def add(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def long(self, depth: int, target: str) -> None:
        """Read a varint into ``target``: one byte by table, more through ``_long``."""
        self.add(depth, f"{target} = _ONE_BYTE[d[p]]")
        self.add(depth, f"if {target} is None: {target}, p = _long(d, p)")
        self.add(depth, "else: p += 1")

    def sized(self, depth: int, target: str, decode: str = "") -> None:
        """Read a length-prefixed value into ``target``, its bytes ``decode``d (``.decode()``
        for a string); a size in one byte is read inline."""
        self.add(depth, "n = _ONE_BYTE_SIZE[d[p]]")
        self.add(depth, f"if n < 0: {target}, p = _sized(d, p); {target} = {target}{decode}")
        self.add(depth, f"else: e = p + 1 + n; {target} = d[p + 1:e]{decode}; p = e")
