"""Load the bundled Avro contracts: one named type per ``<fullname>.avsc`` file.

Each event schema is expanded into one self-contained schema (named types inlined at first use),
so that its Parsing Canonical Form, its CRC-64-AVRO fingerprint and what a Schema Registry stores
all cover the whole structure, not just the top-level names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from auditline.errors import SchemaError

_NAMED = ("record", "enum", "fixed")


def schema_dir() -> Traversable:
    """The .avsc folder: inside the wheel, or the repository's ``schemas/`` in a source checkout."""
    packaged = files("auditline") / "schemas"
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[1] / "schemas"
    if source.is_dir():
        return source
    raise SchemaError(f"no Avro schemas found in {packaged} or {source}: reinstall auditline")


def read_raw_schemas(folder: Traversable | None = None) -> dict[str, dict[str, Any]]:
    """Every named type by full name, as written; each file must be named ``<fullname>.avsc``."""
    folder = folder or schema_dir()
    raw: dict[str, dict[str, Any]] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".avsc"):
            continue
        try:
            schema = json.loads(entry.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{entry.name}: not valid JSON ({exc}); fix the file") from exc
        full = f"{schema.get('namespace', '')}.{schema.get('name', '')}".lstrip(".")
        if entry.name != f"{full}.avsc":
            raise SchemaError(f"{entry.name} defines {full}: name the file {full}.avsc")
        raw[full] = schema
    return raw


def expand(name: str, raw: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The named type ``name`` with every referenced named type inlined at its first use."""
    if name not in raw:
        raise SchemaError(f"unknown schema {name!r}: no {name}.avsc in {schema_dir()}")
    return dict(_Expander(raw).walk(name))


class _Expander:
    """Inlines named-type references; a type already defined stays a name (as Avro requires)."""

    def __init__(self, raw: Mapping[str, dict[str, Any]]) -> None:
        self.raw = raw
        self.seen: set[str] = set()

    def walk(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.reference(node)
        if isinstance(node, list):
            return [self.walk(branch) for branch in node]
        if isinstance(node, dict):
            return self.definition(node)
        return node

    def reference(self, name: str) -> Any:
        if name in self.raw and name not in self.seen:
            return self.walk(self.raw[name])
        return name

    def definition(self, node: dict[str, Any]) -> dict[str, Any]:
        kind = node.get("type")
        out = dict(node)
        if kind in _NAMED:
            self.seen.add(f"{node.get('namespace', '')}.{node['name']}".lstrip("."))
        if kind == "record":
            out["fields"] = [{**f, "type": self.walk(f["type"])} for f in node["fields"]]
        elif kind == "array":
            out["items"] = self.walk(node["items"])
        elif kind == "map":
            out["values"] = self.walk(node["values"])
        return out


@dataclass(frozen=True)
class AvroSchema:
    """One self-contained Avro schema with its identity on the wire."""

    name: str
    definition: dict[str, Any] = field(repr=False)
    parsed: dict[str, Any] = field(repr=False, compare=False)
    canonical: str = field(repr=False)
    fingerprint: bytes
    """8-byte little-endian CRC-64-AVRO of the canonical form (single-object encoding header)."""

    @classmethod
    def from_definition(cls, name: str, definition: dict[str, Any]) -> AvroSchema:
        try:
            parsed = _as_record(parse_schema(definition))
        except Exception as exc:  # fastavro raises several types for a bad schema
            raise SchemaError(f"schema {name} does not parse: {exc}") from exc
        canonical = to_parsing_canonical_form(parsed)
        fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))  # fastavro: the LE bytes
        return cls(name, definition, parsed, canonical, fp)

    @property
    def json(self) -> str:
        return json.dumps(self.definition, separators=(",", ":"))


def _as_record(parsed: object) -> dict[str, Any]:
    if not isinstance(parsed, dict):
        raise SchemaError(f"expected a named type definition, got {parsed!r}")
    return parsed


CONTRACTS_VERSION = 2
"""The layout new events are written in (``Envelope.schema_version``): 2 puts ``hash`` and
``signature`` first in the envelope, so the chain's hashed bytes are the body after them; 1 had
them after ``prev_hash``. ``schemas/v<N>/`` holds the named types whose layout differed in
version N; every other type is shared."""
LAYOUTS = (1, 2)


@cache
def bundled_schema(name: str, version: int = CONTRACTS_VERSION) -> AvroSchema:
    """The bundled, expanded schema of a named type in a contracts layout (cached per process)."""
    raw = bundled_raw_schemas(version)
    return AvroSchema.from_definition(name, expand(name, raw))


@cache
def bundled_raw_schemas(version: int = CONTRACTS_VERSION) -> dict[str, dict[str, Any]]:
    if version not in LAYOUTS:
        raise SchemaError(
            f"contracts version {version} is unknown to this auditline (it reads "
            f"{', '.join(map(str, LAYOUTS))}): upgrade auditline"
        )
    raw = read_raw_schemas()
    if version != CONTRACTS_VERSION:
        raw.update(read_raw_schemas(schema_dir() / f"v{version}"))
    return raw
