"""Trusted decode for the sink: an event's Avro body read into a record checked as its model
checks it, without building the model (pure: no I/O).

The sink stores what Kafka carries. Validating each record into a frozen pydantic model, to read
its fields and write its JSON, cost it as much as reading the Avro, and fastavro's reader, which
interprets the schema value by value, as much again. Here a ``Reader`` is compiled once per kind
from the model's fields and its Avro schema side by side: straight-line Python that reads the
body as fastavro does, builds the record fastavro would return (the JSON payload is written from
it by pydantic-core with the model's settings: the bytes of ``model_dump_json``) and beside it a
``RecordView`` that the row mapping reads like the model. What Avro already guarantees (types,
required fields, enum symbols) is not checked again; what it cannot say is: patterns, lengths,
bounds and literals, on the values pydantic checks them on.

The compiler refuses a kind (``Untrusted``: decoded through its model, as before) where it could
not check or write exactly as pydantic does: a model, field or post-init validator it does not
know (``PredictionBatch`` and ``Outcome`` have theirs), a constraint that changes a value, a
config that changes strings or numbers, a serializer, a field whose name, order or type differs
from the schema. Two validators are known to keep a decoded record as it is:

- ``UtcTime``'s normalisation to UTC milliseconds: Avro timestamp-millis is that already;
- ``Location``'s completion from the region catalogue: it applies to what callers give; a
  decoded location with a country (the schema requires one) is kept as recorded.

A body the reader cannot read, or whose record fails a check, is decoded again by the codec
(fastavro and the model), whose error is the dead-letter reason, as before.
"""

from __future__ import annotations

import struct
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from functools import partial
from typing import Annotated, Any, Literal, Protocol, Union, get_args, get_origin
from uuid import UUID

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import AwareDatetime, BaseModel, StringConstraints
from pydantic_core import SchemaValidator, ValidationError, core_schema, to_json

from auditline.catalogue import Catalogue
from auditline.codec import Codec
from auditline.codec.single_object import HEADER_SIZE, MAGIC, SingleObjectCodec
from auditline.errors import DecodeError
from auditline.events import Event, Location
from auditline.events.types import UtcTime

from .rows import Item, Located, Trusted

Reader = Callable[[bytes, int], tuple[bytes, Any]]
"""``read(data, offset)``: the JSON payload and the view of the record ``data[offset:]`` holds."""


class Untrusted(Exception):
    """A kind the trusted decode cannot check exactly as its model does (decoded by the model)."""


class Invalid(Exception):
    """The body does not read, or its record fails a check (the codec then says why)."""


class RecordView:
    """A record read like its model: its fields as attributes (nested records as views)."""

    def __repr__(self) -> str:
        return f"RecordView({self.__dict__!r})"


_KNOWN_VALIDATORS = {(Location, "_complete_from_region")}
"""Model validators that keep a decoded record as it is (see the module docstring)."""
_KEPT = set(get_args(UtcTime)[1:])
_LEAVES: dict[Any, tuple[str, str | None]] = {
    str: ("string", None),
    int: ("long", None),
    float: ("double", None),
    bool: ("boolean", None),
    bytes: ("bytes", None),
    UUID: ("string", "uuid"),
    AwareDatetime: ("long", "timestamp-millis"),
    date: ("int", "date"),
}
"""Each type a model field may have, with the Avro type (and logical type) it must be read from."""
_SERIALISATION = {
    "ser_json_bytes": "bytes_mode", "ser_json_inf_nan": "inf_nan_mode",
    "ser_json_timedelta": "timedelta_mode", "ser_json_temporal": "temporal_mode",
}  # fmt: skip
"""A model's JSON settings, as ``pydantic_core.to_json`` names them."""
_HARMLESS_CONFIG = {"frozen", "extra", "val_json_bytes", "revalidate_instances", "title"}
_PATTERN_MEMORY = 4096
_MASK64 = (1 << 64) - 1


def _long(data: bytes, pos: int) -> tuple[int, int]:
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


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


_GLOBALS: dict[str, Any] = {
    "_long": _long, "_Invalid": Invalid, "_new": object.__new__, "_RecordView": RecordView,
    "_UUID": UUID,
    "_EPOCH": datetime(1970, 1, 1, tzinfo=UTC), "_timedelta": timedelta,
    "_fromordinal": date.fromordinal, "_DAYS_SHIFT": date(1970, 1, 1).toordinal(),
    "_double": struct.Struct("<d").unpack_from,
}  # fmt: skip
"""What every compiled reader may call (fastavro's own conversions for the logical types)."""


@dataclass
class _Source:
    """A reader's source as it is written, and the constants it names."""

    lines: list[str] = field(default_factory=list)
    constants: dict[str, Any] = field(default_factory=dict)
    count: int = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def constant(self, value: Any) -> str:
        name = self.name("_c")
        self.constants[name] = value
        return name

    def add(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def long(self, depth: int, target: str) -> None:
        """Read a varint into ``target``: one byte inline, more through ``_long``."""
        self.add(depth, "b = d[p]")
        self.add(depth, "if b < 128:")
        self.add(depth + 1, f"p += 1; {target} = (b >> 1) ^ -(b & 1)")
        self.add(depth, "else:")
        self.add(depth + 1, f"{target}, p = _long(d, p)")

    def sized(self, depth: int, target: str, decode: str = "") -> None:
        """Read a length-prefixed value into ``target``, its bytes ``decode``d (``.decode()``
        for a string); fastavro refuses a negative size or one past the end. A size in one or
        two bytes is read inline."""
        self.add(depth, "b = d[p]")
        self.add(depth, "if b < 128:")
        self.add(depth + 1, "e = p + 1 + (b >> 1)")
        self.add(depth + 1, "if b & 1 or e > L: raise _Invalid('a size past the body')")
        self.add(depth + 1, f"{target} = d[p + 1:e]{decode}; p = e")
        self.add(depth, "elif d[p + 1] < 128:  # under 8192: two bytes")
        self.add(depth + 1, "n = (b & 127) | (d[p + 1] << 7); e = p + 2 + (n >> 1)")
        self.add(depth + 1, "if n & 1 or e > L: raise _Invalid('a size past the body')")
        self.add(depth + 1, f"{target} = d[p + 2:e]{decode}; p = e")
        self.add(depth, "else:")
        self.add(depth + 1, "n, p = _long(d, p); e = p + n")
        self.add(depth + 1, "if n < 0 or e > L: raise _Invalid('a size past the body')")
        self.add(depth + 1, f"{target} = d[p:e]{decode}; p = e")


class _Compiler:
    """Writes the reader of one model from its fields and its Avro schema, walking both."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.source = _Source()
        self.serialisation: dict[str, Any] = {}

    def avro(self, node: Any) -> Any:
        """A schema node with a named reference resolved and a primitive as a mapping."""
        if isinstance(node, str):
            return self.named.get(node, {"type": node})
        kind = node.get("type") if isinstance(node, dict) else None
        if isinstance(kind, dict) or (isinstance(kind, str) and kind in self.named):
            return self.avro(kind)
        return node

    def model(self, model: type[BaseModel], node: Any, depth: int) -> tuple[str, str]:
        """Read a record of ``model``: the variables of its record and of its view."""
        self.trust(model)
        schema = self.avro(node)
        fields = list(model.model_fields.items())
        avro_fields = schema.get("fields", []) if isinstance(schema, dict) else []
        names = [avro_field["name"] for avro_field in avro_fields]
        if schema.get("type") != "record" or names != [name for name, _ in fields]:
            raise Untrusted(f"{model.__name__}: fields {names} are not the model's, in order")
        values, views = [], []
        for (name, info), avro_field in zip(fields, avro_fields, strict=True):
            if info.alias or info.serialization_alias or info.exclude:
                raise Untrusted(f"{model.__name__}.{name}: an alias or an exclusion")
            value, view = self.value(
                info.annotation, list(info.metadata), avro_field["type"], depth
            )
            values.append(f"{name!r}: {value}")
            views.append(f"{name!r}: {view}")
        record, view = self.source.name("r"), self.source.name("w")
        self.source.add(depth, f"{record} = {{{', '.join(values)}}}")
        self.source.add(depth, f"{view} = _new(_RecordView)")
        if views == values:  # no nested record: the view's fields are the record
            self.source.add(depth, f"{view}.__dict__ = {record}")
        else:
            self.source.add(depth, f"{view}.__dict__ = {{{', '.join(views)}}}")
        return record, view

    def trust(self, model: type[BaseModel]) -> None:
        """Refuse a model whose validation or JSON the reader could not reproduce."""
        decorators = model.__pydantic_decorators__
        unknown = [
            name for name in decorators.model_validators if (model, name) not in _KNOWN_VALIDATORS
        ]
        if unknown or decorators.field_validators or decorators.validators:
            raise Untrusted(f"{model.__name__}: validators {unknown or 'on fields'}")
        if decorators.root_validators or decorators.field_serializers:
            raise Untrusted(f"{model.__name__}: root validators or field serializers")
        if decorators.model_serializers or decorators.computed_fields:
            raise Untrusted(f"{model.__name__}: a model serializer or computed fields")
        if model.__pydantic_post_init__ is not None:
            raise Untrusted(f"{model.__name__}: model_post_init")
        config = dict(model.model_config)
        unknown = sorted(set(config) - _HARMLESS_CONFIG - set(_SERIALISATION) - {"strict"})
        if config.get("strict") or unknown:
            raise Untrusted(f"{model.__name__}: config {unknown or 'strict'}")
        for key in _SERIALISATION.keys() & config.keys():
            if self.serialisation.setdefault(key, config[key]) != config[key]:
                raise Untrusted(f"{model.__name__}: {key} differs from its records'")

    def value(self, annotation: Any, metadata: list[Any], node: Any, depth: int) -> tuple[str, str]:
        """Read a value of a field's type: the variables of its record value and of its view
        (the same but for records and arrays of records)."""
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Annotated:
            return self.value(args[0], [*annotation.__metadata__, *metadata], node, depth)
        schema = self.avro(node)
        if origin in (Union, types.UnionType):
            return self.optional(args, metadata, schema, depth)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if metadata:
                raise Untrusted(f"constraints on the record {annotation.__name__}")
            return self.model(annotation, schema, depth)
        if origin is tuple:
            return self.array(args, metadata, schema, depth)
        target = self.source.name("v")
        if origin is dict:
            self.mapping(args, metadata, schema, depth, target)
        elif origin is Literal:
            self.literal(args, metadata, schema, depth, target)
        else:
            self.leaf(annotation, metadata, schema, depth, target)
        return target, target

    def optional(
        self, args: tuple[Any, ...], metadata: list[Any], schema: Any, depth: int
    ) -> tuple[str, str]:
        """``X | None`` from ``["null", X]`` or ``[X, "null"]`` (fastavro's negative indexes
        too); the constraints apply to X, as pydantic applies them."""
        present = [arg for arg in args if arg is not type(None)]
        if len(args) != 2 or len(present) != 1 or not isinstance(schema, list) or len(schema) != 2:
            raise Untrusted(f"a union other than an optional value: {args} from {schema}")
        if "null" not in schema:
            raise Untrusted(f"an optional value without null: {schema}")
        null = schema.index("null")
        value, view = self.source.name("v"), self.source.name("w")
        # the branch's index as fastavro indexes the union: i or i - 2, zig-zag in one byte
        # (a longer encoding of it is left to the codec)
        self.source.add(depth, "b = d[p]; p += 1")
        self.source.add(depth, f"if b == {_zigzag(null)} or b == {_zigzag(null - 2)}:")
        self.source.add(depth + 1, f"{value} = None")
        none = len(self.source.lines) - 1
        self.source.add(depth, f"elif b == {_zigzag(1 - null)} or b == {_zigzag(-1 - null)}:")
        inner, inner_view = self.value(present[0], metadata, schema[1 - null], depth + 1)
        self.source.add(depth + 1, f"{value} = {inner}")
        if inner_view == inner:
            view = value
        else:  # a record: its view too
            self.source.lines[none] += f"; {view} = None"
            self.source.add(depth + 1, f"{view} = {inner_view}")
        self.source.add(depth, "else: raise _Invalid('a union branch in no byte it names')")
        return value, view

    def array(
        self, args: tuple[Any, ...], metadata: list[Any], schema: Any, depth: int
    ) -> tuple[str, str]:
        """``tuple[X, ...]`` from an Avro array, block by block (a negative count carries the
        block's size, unused)."""
        if metadata or len(args) != 2 or args[1] is not Ellipsis or schema.get("type") != "array":
            raise Untrusted(f"a tuple other than tuple[X, ...] of an Avro array: {args}")
        values, views, count = self.source.name("a"), self.source.name("a"), self.source.name("c")
        start = len(self.source.lines)
        self.source.add(depth, f"{values} = []")
        self.blocks(depth, count)
        item, item_view = self.value(args[0], [], schema["items"], depth + 2)
        self.source.add(depth + 2, f"{values}.append({item})")
        if item_view == item:
            views = values
        else:  # records: their views too
            self.source.lines[start] += f"; {views} = []"
            self.source.add(depth + 2, f"{views}.append({item_view})")
        self.source.long(depth + 1, count)
        return values, views

    def blocks(self, depth: int, count: str) -> None:
        """Open the loops over an array's or a map's blocks and items."""
        self.source.long(depth, count)
        self.source.add(depth, f"while {count}:")
        self.source.add(depth + 1, f"if {count} < 0:")
        self.source.add(depth + 2, f"{count} = -{count}")
        self.source.long(depth + 2, "_")
        self.source.add(depth + 1, f"for _ in range({count}):")

    def mapping(
        self, args: tuple[Any, ...], metadata: list[Any], schema: Any, depth: int, target: str
    ) -> None:
        if metadata or args[0] is not str or schema.get("type") != "map":
            raise Untrusted(f"a dict other than dict[str, X] of an Avro map: {args}")
        key, count = self.source.name("k"), self.source.name("c")
        self.source.add(depth, f"{target} = {{}}")
        self.blocks(depth, count)
        self.source.sized(depth + 2, key, ".decode()")
        value, view = self.value(args[1], [], schema["values"], depth + 2)
        if view != value:
            raise Untrusted("a map of records")
        self.source.add(depth + 2, f"{target}[{key}] = {value}")
        self.source.long(depth + 1, count)

    def literal(
        self, args: tuple[Any, ...], metadata: list[Any], schema: Any, depth: int, target: str
    ) -> None:
        if metadata or not all(type(arg) is int for arg in args):
            raise Untrusted(f"a literal other than of ints: {args}")
        if schema.get("type") not in ("int", "long") or schema.get("logicalType"):
            raise Untrusted(f"a literal of ints from {schema}")
        self.source.long(depth, target)
        self.check(depth, f"{target} in {self.source.constant(frozenset(args))}", target)

    def leaf(
        self, annotation: Any, metadata: list[Any], schema: Any, depth: int, target: str
    ) -> None:
        kind, logical = schema.get("type"), schema.get("logicalType")
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            values = {member.value for member in annotation}
            if kind != "enum" or not all(isinstance(value, str) for value in values):
                raise Untrusted(f"the enum {annotation.__name__} from {schema}")
            index = self.source.name("i")
            self.source.long(depth, index)
            self.source.add(depth, f"{target} = {self.source.constant(tuple(schema['symbols']))}"
                                   f"[{index}]")  # fmt: skip
            if not set(schema["symbols"]) <= values:
                self.check(depth, f"{target} in {self.source.constant(frozenset(values))}", target)
        else:
            expected = _LEAVES.get(annotation)
            allowed = {expected, ("int", None)} if expected == ("long", None) else {expected}
            if expected is None or (kind, logical) not in allowed:
                raise Untrusted(f"{annotation} from {schema}")
            self.primitive(kind, logical, depth, target)
        for item in metadata:
            if item not in _KEPT:
                self.constraint(item, depth, target)

    def primitive(self, kind: str, logical: str | None, depth: int, target: str) -> None:
        """Read a primitive as fastavro reads it, its logical type converted as fastavro does."""
        if kind in ("int", "long"):
            self.source.long(depth, target)
        elif kind == "double":
            self.source.add(depth, f"{target} = _double(d, p)[0]; p += 8")
        elif kind == "boolean":
            self.source.add(depth, f"{target} = d[p] != 0; p += 1")
        elif kind in ("string", "bytes"):
            self.source.sized(depth, target, ".decode()" if kind == "string" else "")
        if logical == "uuid":
            self.source.add(depth, f"{target} = _UUID({target})")
        elif logical == "timestamp-millis":
            self.source.add(depth, f"{target} = _EPOCH + _timedelta(microseconds={target} * 1000)")
        elif logical == "date":
            self.source.add(depth, f"{target} = _fromordinal({target} + _DAYS_SHIFT)")

    def constraint(self, item: Any, depth: int, target: str) -> None:
        """Check one constraint as pydantic applies it to a str, an int or a float."""
        if isinstance(item, StringConstraints):
            changes = (item.strip_whitespace, item.to_upper, item.to_lower, item.strict,
                       item.ascii_only)  # fmt: skip
            if any(change is not None for change in changes):
                raise Untrusted(f"a constraint that changes strings: {item}")
            if item.min_length is not None:
                self.min_length(item.min_length, depth, target)
            if item.max_length is not None:
                self.check(depth, f"len({target}) <= {item.max_length}", target)
            if item.pattern is not None:
                matched = _Pattern(str(item.pattern))
                names = self.source.constant(matched.memory), self.source.constant(matched)
                self.check(depth, f"{target} in {names[0]} or {names[1]}({target})", target)
            return
        bounds = {Ge: (">=", "ge"), Gt: (">", "gt"), Le: ("<=", "le"), Lt: ("<", "lt")}
        if type(item) in bounds:
            operator, attribute = bounds[type(item)]
            bound = self.source.constant(getattr(item, attribute))
            self.check(depth, f"{target} {operator} {bound}", target)
        elif isinstance(item, MinLen):
            self.min_length(item.min_length, depth, target)
        elif isinstance(item, MaxLen):
            self.check(depth, f"len({target}) <= {item.max_length}", target)
        else:
            raise Untrusted(f"a constraint the trusted decode does not know: {item!r}")

    def min_length(self, length: int, depth: int, target: str) -> None:
        """At least ``length`` characters (bytes): one, a value that is not empty."""
        self.check(depth, target if length == 1 else f"len({target}) >= {length}", target)

    def check(self, depth: int, condition: str, target: str) -> None:
        self.source.add(depth, f"if not ({condition}): raise _Invalid({target!r})")


class _Pattern:
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
        if len(self.memory) < _PATTERN_MEMORY:
            self.memory.add(value)
        return True


def compile_reader(model: type[BaseModel], schema: dict[str, Any]) -> Reader:
    """The reader of ``model``'s bodies written with ``schema`` (fastavro-parsed, named types
    in ``__named_schemas``); ``Untrusted`` when the kind has none."""
    compiler = _Compiler(schema.get("__named_schemas", {}))
    source = compiler.source
    record, view = compiler.model(model, schema, 1)
    settings: dict[str, Any] = {"bytes_mode": "utf8", "inf_nan_mode": "null"}
    settings.update({_SERIALISATION[k]: v for k, v in compiler.serialisation.items()})
    source.add(1, "if p != L: raise _Invalid('bytes left after the record')")
    source.add(1, f"return _json({record}), {view}")
    text = "\n".join(["def read(d, p):", "    L = len(d)", *source.lines])
    namespace = {**_GLOBALS, **source.constants, "_json": partial(to_json, **settings)}
    exec(compile(text, f"<{model.__name__} reader>", "exec"), namespace)
    reader: Reader = namespace["read"]
    return reader


class Decoder(Protocol):
    """Messages → items for the writer; a ``DecodeError`` for what is no event."""

    def item(self, data: bytes, topic: str, partition: int, offset: int) -> Item: ...


class ModelDecoder:
    """Every event through its model (the codec's ``decode``)."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def item(self, data: bytes, topic: str, partition: int, offset: int) -> Item:
        return Located(self.codec.decode(data), topic, partition, offset)


def decoder_for(codec: Codec) -> Decoder:
    """The trusted decode for the single-object framing (the bundled schemas it names are the
    ones the readers are compiled from); with a registry's framing, every event by its model."""
    return TrustedDecoder(codec) if isinstance(codec, SingleObjectCodec) else ModelDecoder(codec)


class TrustedDecoder:
    """Messages → items: trusted records of the kinds that have a reader, written with their
    bundled schema in the single-object framing; every other message, and any that fails here,
    decoded by the codec (its model, its errors), as before."""

    def __init__(self, codec: SingleObjectCodec) -> None:
        self.codec = codec
        self.limit = codec.max_message_bytes
        self.readers: dict[bytes, tuple[type[Event], Reader] | None] = {}

    def item(self, data: bytes, topic: str, partition: int, offset: int) -> Item:
        """The message's item; the codec's ``DecodeError`` for what is no event."""
        found = None
        if data[:2] == MAGIC and len(data) <= self.limit:
            fingerprint = data[2:HEADER_SIZE]
            if fingerprint in self.readers:
                found = self.readers[fingerprint]
            else:
                found = self._reader(fingerprint)
        if found is not None:
            model, read = found
            try:
                payload, view = read(data, HEADER_SIZE)
            except Exception:  # noqa: BLE001 (the codec says what was wrong, below)
                pass
            else:  # tuple.__new__: a named tuple's own __new__ is Python, 0.4 µs an event
                return tuple.__new__(Trusted, (model, view, payload, topic, partition, offset))
        return Located(self.codec.decode(data), topic, partition, offset)

    def _reader(self, fingerprint: bytes) -> tuple[type[Event], Reader] | None:
        """The kind and reader of a fingerprint (None: none), compiled at its first message."""
        found = None
        try:
            entry, writer = self.codec.catalogue.for_fingerprint(fingerprint)
            if writer is entry.schema:  # the current layout (earlier ones: the codec)
                found = entry.model, compile_reader(entry.model, writer.parsed)
        except (Untrusted, DecodeError):
            found = None
        if len(self.readers) < 1024:  # bounded: fingerprints come from the messages
            self.readers[fingerprint] = found
        return found


def untrusted(catalogue: Catalogue) -> dict[type[Event], str]:
    """The kinds without a reader, and why (decoded through their models)."""
    reasons = {}
    for entry in catalogue.entries:
        try:
            compile_reader(entry.model, entry.schema.parsed)
        except Untrusted as exc:
            reasons[entry.model] = str(exc)
    return reasons
