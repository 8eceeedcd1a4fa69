"""The schema is the contract: every .avsc parses, is documented, and the models mirror it."""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin

import pytest
from fastavro import parse_schema
from pydantic import BaseModel

from auditline.catalogue import Catalogue
from auditline.contracts import AvroSchema, expand, read_raw_schemas
from auditline.events import Event

RAW = read_raw_schemas()
CATALOGUE = Catalogue()


@pytest.mark.parametrize("name", sorted(RAW))
def test_every_schema_parses_expanded_and_is_documented(name: str) -> None:
    raw = RAW[name]
    assert raw["namespace"].startswith("auditline."), "every schema is namespaced"
    assert raw.get("doc"), f"{name} has no doc"
    for field in raw.get("fields", []):
        assert field.get("doc"), f"{name}.{field['name']} has no doc"
    parse_schema(expand(name, RAW), _write_hint=False)


def test_every_event_model_has_exactly_one_schema_topic_and_key() -> None:
    models = [entry.model for entry in CATALOGUE]
    assert len(models) == len(set(models))
    schemas = [entry.schema.name for entry in CATALOGUE]
    assert len(schemas) == len(set(schemas))
    assert set(Event.__subclasses__()) <= set(models)
    fingerprints = {entry.schema.fingerprint for entry in CATALOGUE}
    assert len(fingerprints) == len(models), "fingerprints identify schemas uniquely"
    assert all(entry.topic.startswith("auditline.") for entry in CATALOGUE)


def _rabin_crc64_avro(text: str) -> int:
    """The Avro specification's reference fingerprint algorithm, written out independently."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in text.encode():
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_fingerprints_follow_the_specification() -> None:
    assert _rabin_crc64_avro('"null"') == 0x63DD24E7CC258F8A  # Java SchemaNormalization vector
    schema = AvroSchema.from_definition("X", {"type": "record", "name": "X", "fields": []})
    assert schema.fingerprint == _rabin_crc64_avro(schema.canonical).to_bytes(8, "little")
    for entry in CATALOGUE:
        expected = _rabin_crc64_avro(entry.schema.canonical).to_bytes(8, "little")
        assert entry.schema.fingerprint == expected, entry.schema.name


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) < len(get_args(annotation)):
            return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), True  # noqa: UP007
    return annotation, False


def _mirror(model: type[BaseModel], record: dict[str, Any], names: dict[str, Any]) -> None:
    """Field names, order and optionality of the model equal the schema's; recurse into records."""
    fields = [f["name"] for f in record["fields"]]
    assert list(model.model_fields) == fields, f"{model.__name__} fields differ from {fields}"
    for avro_field in record["fields"]:
        info = model.model_fields[avro_field["name"]]
        annotation, optional = _unwrap_optional(info.annotation)
        avro_type = avro_field["type"]
        is_union_with_null = isinstance(avro_type, list) and "null" in avro_type
        where = f"{model.__name__}.{avro_field['name']}"
        assert optional == is_union_with_null, f"{where}: optional must mirror a null union"
        if is_union_with_null and len(avro_type) == 2:
            avro_type = next(t for t in avro_type if t != "null")
        assert ("default" in avro_field) == (not info.is_required()), f"{where}: default mismatch"
        nested = names.get(avro_type) if isinstance(avro_type, str) else avro_type
        if isinstance(nested, dict) and nested.get("type") == "record":
            names[f"{nested['namespace']}.{nested['name']}"] = nested
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel), where
            assert annotation.__name__ == nested["name"], f"{where}: model/record name differ"
            _mirror(annotation, nested, names)


@pytest.mark.parametrize("entry", list(CATALOGUE), ids=lambda e: e.model.__name__)
def test_model_mirrors_its_schema_one_to_one(entry: Any) -> None:
    assert entry.model.__name__ == entry.schema.definition["name"]
    _mirror(entry.model, entry.schema.definition, dict(RAW))
