"""Trusted decode: an event's Avro body read straight into its model, checked as the model checks
it, without running pydantic's validation (pure: no I/O).

Reading a body with fastavro's reader, which interprets the schema value by value, and then
validating the record into its frozen model cost a consumer ~40 µs an event. Here a ``Reader`` is
compiled once per kind from the model's fields and its Avro schema side by side: straight-line
Python that reads the body as fastavro does and builds the models validation would build (each
one allocated with ``object.__new__`` and its ``__dict__``, fields set, extra and private slots
set directly, as validation leaves them: tuples where the model declares tuples, enum members,
UUIDs, UTC datetimes, nested models). What Avro already guarantees (types, required fields, enum
symbols) is not checked again; what it cannot say is: patterns, lengths, bounds and literals.

Two things are shared where validation would make new ones, which neither ``==``, hashing,
``model_dump`` nor pickling can tell apart: a frozen model's instances share one fields-set (all
its fields: nothing changes a frozen model's; pydantic's own revalidation shares it too), and a
nested record of values that repeat (a location, a party, a producer: no ids, times or maps) is
remembered with its bytes, the same bytes next time giving the same frozen instance, which
spares a consumer most of a movement's reading (a data movement: ~9 µs, ~17 µs when nothing
repeats).

The compiler refuses a kind (``Untrusted``: decoded through its model, as before) where it could
not check or build exactly as pydantic does: a model, field or post-init validator it does not
know (``PredictionBatch`` and ``Outcome`` have theirs), a constraint that changes a value, a config
that changes strings or numbers, private attributes, extra fields kept, a field whose name, order
or type differs from the schema. Two validators are known to keep a decoded record as it is:

- ``UtcTime``'s normalisation to UTC milliseconds: Avro timestamp-millis is that already;
- ``Location``'s completion from the region catalogue: it applies to what callers give; a
  decoded location with a country (the schema requires one) is kept as recorded.

A reader raises on a body it cannot read or whose record fails a check; the codec then decodes
the message again with fastavro and the model, whose error is the dead-letter reason, as before.
"""

from __future__ import annotations

import itertools
import re
import types
from collections.abc import Callable
from datetime import date
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import AwareDatetime, BaseModel, StringConstraints

from auditline.catalogue import Catalogue
from auditline.codec.trusted_source import GLOBALS, PATTERN_MEMORY, Invalid, Pattern, Source, zigzag
from auditline.events import Event, Location
from auditline.events.types import UtcTime

Reader = Callable[[bytes, int], Any]
"""``read(data, offset)``: the event model of the body ``data[offset:]`` (all of it) holds."""

__all__ = ["Invalid", "Reader", "Untrusted", "compile_reader", "trusted_reader", "untrusted"]


class Untrusted(Exception):
    """A kind the trusted decode cannot check exactly as its model does (decoded by the model)."""


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
_HARMLESS_CONFIG = {
    "frozen", "extra", "val_json_bytes", "revalidate_instances", "title", "strict",
    "ser_json_bytes", "ser_json_inf_nan", "ser_json_timedelta", "ser_json_temporal",
}  # fmt: skip
"""Config that changes neither what validation accepts from Python values nor what it makes."""
_SIMPLE_PATTERN = re.compile(r"\^\[((?:[0-9A-Za-z]-[0-9A-Za-z])+)\]\{(\d+)\}\$")
"""``^[a-z0-9]{64}$``: characters from ranges of letters and digits, a fixed number of them."""


class _Compiler:
    """Writes the reader of one model from its fields and its Avro schema, walking both."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.source = Source()
        self.repeated = 0

    def avro(self, node: Any) -> Any:
        """A schema node with a named reference resolved and a primitive as a mapping."""
        if isinstance(node, str):
            return self.named.get(node, {"type": node})
        kind = node.get("type") if isinstance(node, dict) else None
        if isinstance(kind, dict) or (isinstance(kind, str) and kind in self.named):
            return self.avro(kind)
        return node

    def model(self, model: type[BaseModel], node: Any, depth: int) -> str:
        """Read a record of ``model``: the variable holding its instance. A nested record of
        values that repeat (no identifiers, no mutable fields) outside arrays is remembered
        with its bytes: where the same bytes come next, the same (frozen) instance is taken."""
        if self.repeated or not _repeats(model):
            return self.build(model, node, depth)
        instance, memory = self.source.name("m"), self.source.memory()
        start = f"s{instance}"
        # one tuple (bytes, instance, size), rebound at once: a reader may run in threads
        self.source.add(depth, f"c = {memory}")
        self.source.add(depth, f"if d.startswith(c[0], p): {instance} = c[1]; p += c[2]")
        self.source.add(depth, "else:")
        self.source.add(depth + 1, f"{start} = p")
        built = self.build(model, node, depth + 1)
        self.source.add(depth + 1, f"{instance} = {built}")
        remembered = f"(d[{start}:p], {instance}, p - {start})"
        self.source.add(depth + 1, f"if p <= len(d): {memory} = {remembered}")
        return instance

    def build(self, model: type[BaseModel], node: Any, depth: int) -> str:
        """Read a record of ``model`` into a new instance: the variable holding it."""
        self.trust(model)
        schema = self.avro(node)
        fields = list(model.model_fields.items())
        avro_fields = schema.get("fields", []) if isinstance(schema, dict) else []
        names = [avro_field["name"] for avro_field in avro_fields]
        if schema.get("type") != "record" or names != [name for name, _ in fields]:
            raise Untrusted(f"{model.__name__}: fields {names} are not the model's, in order")
        values = []
        for (name, info), avro_field in zip(fields, avro_fields, strict=True):
            if info.alias or info.validation_alias:
                raise Untrusted(f"{model.__name__}.{name}: an alias")
            value = self.value(info.annotation, list(info.metadata), avro_field["type"], depth)
            values.append(f"{name!r}: {value}")
        instance, cls = self.source.name("m"), self.source.constant(model)
        names_set = {name for name, _ in fields}
        # as validation leaves it: every field given (the record has them all; a set of its
        # own, as validation gives each instance), no extra (forbidden or ignored), no private
        # attributes
        fields_set = f"{self.source.constant(names_set)}.copy()"
        fields_dict = ", ".join(values)
        self.source.add(depth, f"{instance} = _new({cls}); _sd({instance}, {{{fields_dict}}})")
        self.source.add(depth, f"_sf({instance}, {fields_set}); _se({instance}, None); "
                               f"_sp({instance}, None)")  # fmt: skip
        return instance

    def trust(self, model: type[BaseModel]) -> None:
        """Refuse a model whose validation the reader could not reproduce."""
        decorators = model.__pydantic_decorators__
        unknown = [
            name for name in decorators.model_validators if (model, name) not in _KNOWN_VALIDATORS
        ]
        if unknown or decorators.field_validators or decorators.validators:
            raise Untrusted(f"{model.__name__}: validators {unknown or 'on fields'}")
        if decorators.root_validators:
            raise Untrusted(f"{model.__name__}: root validators")
        if model.__pydantic_post_init__ is not None or model.__private_attributes__:
            raise Untrusted(f"{model.__name__}: model_post_init or private attributes")
        if model.__pydantic_root_model__ or model.__pydantic_generic_metadata__["origin"]:
            raise Untrusted(f"{model.__name__}: a root or generic model")
        config = dict(model.model_config)
        unknown = sorted(set(config) - _HARMLESS_CONFIG)
        if config.get("strict") or config.get("extra") == "allow" or unknown:
            raise Untrusted(f"{model.__name__}: config {unknown or 'strict or extra=allow'}")

    def value(self, annotation: Any, metadata: list[Any], node: Any, depth: int) -> str:
        """Read a value of a field's type: the variable holding it."""
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
        target = self.source.name("v")
        if origin is tuple:
            self.array(args, metadata, schema, depth, target)
        elif origin is dict:
            self.mapping(args, metadata, schema, depth, target)
        elif origin is Literal:
            self.literal(args, metadata, schema, depth, target)
        else:
            self.leaf(annotation, metadata, schema, depth, target)
        return target

    def optional(self, args: tuple[Any, ...], metadata: list[Any], schema: Any, depth: int) -> str:
        """``X | None`` from ``["null", X]`` or ``[X, "null"]`` (fastavro's negative indexes
        too); the constraints apply to X, as pydantic applies them."""
        present = [arg for arg in args if arg is not type(None)]
        if len(args) != 2 or len(present) != 1 or not isinstance(schema, list) or len(schema) != 2:
            raise Untrusted(f"a union other than an optional value: {args} from {schema}")
        if "null" not in schema:
            raise Untrusted(f"an optional value without null: {schema}")
        null = schema.index("null")
        value = self.source.name("v")
        # the branch's index as fastavro indexes the union: i or i - 2, zig-zag in one byte
        # (a longer encoding of it is left to the codec)
        self.source.add(depth, "b = d[p]; p += 1")
        self.source.add(depth, f"if b == {zigzag(null)}: {value} = None")
        self.source.add(depth, f"elif b == {zigzag(1 - null)} or b == {zigzag(-1 - null)}:")
        inner = self.value(present[0], metadata, schema[1 - null], depth + 1)
        self.source.add(depth + 1, f"{value} = {inner}")
        self.source.add(depth, f"elif b == {zigzag(null - 2)}: {value} = None")
        self.source.add(depth, "else: raise _Invalid('a union branch in no byte it names')")
        return value

    def array(
        self, args: tuple[Any, ...], metadata: list[Any], schema: Any, depth: int, target: str
    ) -> None:
        """``tuple[X, ...]`` from an Avro array (a tuple, as validation makes it)."""
        if metadata or len(args) != 2 or args[1] is not Ellipsis or schema.get("type") != "array":
            raise Untrusted(f"a tuple other than tuple[X, ...] of an Avro array: {args}")
        self.source.add(depth, "if d[p] == 0:  # empty")
        self.source.add(depth + 1, f"p += 1; {target} = ()")
        self.source.add(depth, "else:")
        self.source.add(depth + 1, f"{target} = []")
        if args[0] is float and self.avro(schema["items"]) == {"type": "double"}:
            self.blocks(depth + 1, bulk=True)  # a block of doubles: one struct read
            self.source.add(depth + 2, f"{target} += _doubles(n)(d, p); p += 8 * n")
        else:
            self.blocks(depth + 1)
            self.repeated += 1
            item = self.value(args[0], [], schema["items"], depth + 3)
            self.repeated -= 1
            self.source.add(depth + 3, f"{target}.append({item})")
        self.source.long(depth + 2, "n")
        self.source.add(depth + 1, f"{target} = tuple({target})")

    def blocks(self, depth: int, *, bulk: bool = False) -> None:
        """Open the loops over an array's or a map's blocks (``n`` items each) and, unless
        the block is read in ``bulk``, its items (a negative count carries the block's size,
        unused)."""
        self.source.long(depth, "n")
        self.source.add(depth, "while n:")
        self.source.add(depth + 1, "if n < 0:")
        self.source.add(depth + 2, "n = -n")
        self.source.long(depth + 2, "_")
        if not bulk:
            self.source.add(depth + 1, "for _ in range(n):")

    def mapping(
        self, args: tuple[Any, ...], metadata: list[Any], schema: Any, depth: int, target: str
    ) -> None:
        if metadata or args[0] is not str or schema.get("type") != "map":
            raise Untrusted(f"a dict other than dict[str, X] of an Avro map: {args}")
        if isinstance(args[1], type) and issubclass(args[1], BaseModel):
            raise Untrusted("a map of records")
        key = self.source.name("k")
        self.source.add(depth, f"{target} = {{}}")
        self.blocks(depth)
        self.source.sized(depth + 2, key, ".decode()")
        self.repeated += 1
        value = self.value(args[1], [], schema["values"], depth + 2)
        self.repeated -= 1
        self.source.add(depth + 2, f"{target}[{key}] = {value}")
        self.source.long(depth + 1, "n")

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
            self.enum(annotation, schema, depth, target)
        else:
            expected = _LEAVES.get(annotation)
            allowed = {expected, ("int", None)} if expected == ("long", None) else {expected}
            if expected is None or (kind, logical) not in allowed:
                raise Untrusted(f"{annotation} from {schema}")
            self.primitive(kind, logical, depth, target)
        for item in metadata:
            if item not in _KEPT:
                self.constraint(item, depth, target)

    def enum(self, annotation: type[Enum], schema: Any, depth: int, target: str) -> None:
        """An enum member by its symbol's index (an index no symbol has, or a symbol that is no
        member's value, fails: the codec says why)."""
        values = {member.value: member for member in annotation}
        if schema.get("type") != "enum" or not all(isinstance(value, str) for value in values):
            raise Untrusted(f"the enum {annotation.__name__} from {schema}")
        members = {i: values[s] for i, s in enumerate(schema["symbols"]) if s in values}
        self.source.long(depth, target)
        self.source.add(depth, f"{target} = {self.source.constant(members)}[{target}]")

    def primitive(self, kind: str, logical: str | None, depth: int, target: str) -> None:
        """Read a primitive as fastavro reads it, its logical type converted as fastavro does."""
        if kind in ("int", "long"):
            self.source.long(depth, target)
        elif kind == "double":
            self.source.add(depth, f"{target} = _double(d, p)[0]; p += 8")
        elif kind == "boolean":
            self.source.add(depth, f"{target} = _BOOLEAN[d[p]]; p += 1")
        elif kind in ("string", "bytes"):
            text = kind == "string" and logical != "uuid"
            self.source.sized(depth, target, ".decode()" if text else "")
        if logical == "uuid":
            # ``UUID(text)`` removes the hyphens and reads the 32 characters left with ``int``,
            # as here from the text's bytes (text with braces, a ``urn:uuid:`` prefix or other
            # than ASCII fails here: the codec reads it)
            self.source.add(depth, f"h = {target}.replace(b'-', b'')")
            self.source.add(depth, "if len(h) != 32: raise _Invalid('not a UUID')")
            self.source.add(depth, f"{target} = _new(_UUID); _uuid_int({target}, int(h, 16)); "
                                   f"_uuid_safe({target}, _UNKNOWN)")  # fmt: skip
        elif logical == "timestamp-millis":  # fastavro's epoch + timedelta, in integers
            self.source.add(depth, f"{target} = _EPOCH + _MILLISECOND * {target}")
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
                if not isinstance(item.pattern, str):  # a compiled pattern carries its flags
                    raise Untrusted(f"a compiled pattern: {item}")
                self.pattern(item.pattern, depth, target)
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

    def pattern(self, pattern: str, depth: int, target: str) -> None:
        """Match as pydantic-core does: ``^[ranges]{n}$`` of ASCII ranges as the set of all its
        matches where that is small (a country code), else (a hex digest) as a length and the
        bytes left when those of the ranges are deleted (none); any other pattern by
        pydantic-core itself, remembering values that matched."""
        simple = _SIMPLE_PATTERN.fullmatch(pattern)
        if simple:
            ranges, size = simple.group(1), int(simple.group(2))
            allowed = "".join(
                chr(c) for i in range(0, len(ranges), 3)
                for c in range(ord(ranges[i]), ord(ranges[i + 2]) + 1)
            )  # fmt: skip
            if len(allowed) ** size <= PATTERN_MEMORY:  # a country code: every match, known
                matches = {"".join(chars) for chars in itertools.product(allowed, repeat=size)}
                self.check(depth, f"{target} in {self.source.constant(frozenset(matches))}", target)
                return
            strip = self.source.constant(allowed.encode())
            deleted = f"{target}.encode().translate(None, {strip})"
            self.check(depth, f"len({target}) == {size} and not {deleted}", target)
            return
        matched = Pattern(pattern)
        names = self.source.constant(matched.memory), self.source.constant(matched)
        self.check(depth, f"{target} in {names[0]} or {names[1]}({target})", target)

    def min_length(self, length: int, depth: int, target: str) -> None:
        """At least ``length`` characters (bytes): one, a value that is not empty."""
        self.check(depth, target if length == 1 else f"len({target}) >= {length}", target)

    def check(self, depth: int, condition: str, target: str) -> None:
        self.source.add(depth, f"if not ({condition}): raise _Invalid({target!r})")


def _repeats(model: type[BaseModel]) -> bool:
    """Whether ``model``'s values are worth remembering and may be shared: frozen, with no
    identifiers (UUIDs, times, bytes) and nothing mutable (maps), in it or in its records."""
    fields = model.model_fields.values()
    return bool(model.model_config.get("frozen")) and all(
        _repeating(info.annotation) for info in fields
    )


def _repeating(annotation: Any) -> bool:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated or origin in (Union, types.UnionType, tuple):
        return all(_repeating(arg) for arg in args if arg is not Ellipsis)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _repeats(annotation)
    return origin is not dict and annotation not in (UUID, AwareDatetime, bytes)


def compile_reader(model: type[BaseModel], schema: dict[str, Any]) -> Reader:
    """The reader of ``model``'s bodies written with ``schema`` (fastavro-parsed, named types
    in ``__named_schemas``); ``Untrusted`` when the kind has none."""
    compiler = _Compiler(schema.get("__named_schemas", {}))
    source = compiler.source
    instance = compiler.build(model, schema, 1)
    source.add(1, "if p != len(d): raise _Invalid('the record ends before the body')")
    source.add(1, f"return {instance}")
    memories = [f"    global {', '.join(source.memories)}"] if source.memories else []
    text = "\n".join(["def read(d, p):", *memories, *source.lines])
    namespace = {**GLOBALS, **source.constants}
    exec(compile(text, f"<{model.__name__} reader>", "exec"), namespace)
    reader: Reader = namespace["read"]
    return reader


def trusted_reader(model: type[BaseModel], schema: dict[str, Any]) -> Reader | None:
    """``compile_reader``, or None for a kind it refuses (read through its model)."""
    try:
        return compile_reader(model, schema)
    except Exception:  # noqa: BLE001 - Untrusted, or a model and schema the compiler misreads
        return None


def untrusted(catalogue: Catalogue) -> dict[type[Event], str]:
    """The kinds without a trusted reader, and why (decoded through their models)."""
    reasons = {}
    for entry in catalogue.entries:
        try:
            compile_reader(entry.model, entry.schema.parsed)
        except Exception as exc:  # noqa: BLE001 - as trusted_reader
            reasons[entry.model] = str(exc)
    return reasons
