"""The compatibility checker catches breaking changes and accepts safe evolutions."""

from __future__ import annotations

import copy
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from auditline.catalogue import Catalogue
from auditline.compat import backward, forward

MOVEMENT = (
    Catalogue()
    .for_model(__import__("auditline.events", fromlist=["DataMovement"]).DataMovement)
    .schema.definition
)


def _with_field(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    changed["fields"].append(field)
    return changed


def test_identical_schemas_are_compatible_both_ways() -> None:
    assert backward(MOVEMENT, MOVEMENT) == []
    assert forward(MOVEMENT, MOVEMENT) == []


def test_adding_an_optional_field_with_default_is_fully_compatible() -> None:
    new = _with_field(MOVEMENT, {"name": "ticket", "type": ["null", "string"], "default": None})
    assert backward(new, MOVEMENT) == []
    assert forward(new, MOVEMENT) == []


def test_adding_a_required_field_breaks_backward_compatibility() -> None:
    new = _with_field(MOVEMENT, {"name": "ticket", "type": "string"})
    assert backward(new, MOVEMENT) == [
        "ticket: reader field has no default and the writer lacks it"
    ]
    assert forward(new, MOVEMENT) == []


def test_removing_a_field_without_default_breaks_forward_compatibility() -> None:
    new = copy.deepcopy(MOVEMENT)
    new["fields"] = [f for f in new["fields"] if f["name"] != "purpose"]
    assert backward(new, MOVEMENT) == []
    assert forward(new, MOVEMENT) == [
        "purpose: reader field has no default and the writer lacks it"
    ]


def test_changing_a_type_is_caught_and_promotion_is_allowed() -> None:
    narrowed = copy.deepcopy(MOVEMENT)
    next(f for f in narrowed["fields"] if f["name"] == "records")["type"] = "int"
    assert backward(MOVEMENT, narrowed) == []  # int written, read as long: a promotion
    assert forward(MOVEMENT, narrowed) == ["records: writer type long cannot be read as int"]


def test_enum_symbol_removed_without_default_is_caught() -> None:
    enum_old = {"type": "enum", "name": "E", "symbols": ["a", "b"]}
    enum_new = {"type": "enum", "name": "E", "symbols": ["a"]}
    assert backward(enum_new, enum_old) == ["<root>: reader enum lacks ['b'] and has no default"]
    assert backward({**enum_new, "default": "a"}, enum_old) == []


def test_nested_record_change_is_reported_with_its_path() -> None:
    new = copy.deepcopy(MOVEMENT)
    exporter = next(f for f in new["fields"] if f["name"] == "exporter")  # Party defined here
    exporter["type"]["fields"].append({"name": "zone", "type": "string"})
    assert backward(new, MOVEMENT) == [
        "exporter.zone: reader field has no default and the writer lacks it"
    ]


@pytest.mark.parametrize("entry", list(Catalogue()), ids=lambda e: e.model.__name__)
def test_checker_agrees_with_fastavro_resolution_on_generated_data(entry: Any) -> None:
    """Cross-check: data written with the old schema decodes with the compatible new one."""
    old = entry.schema.definition
    new = _with_field(old, {"name": "added", "type": ["null", "long"], "default": None})
    assert backward(new, old) == []
    writer, reader = parse_schema(old, _write_hint=False), parse_schema(new, _write_hint=False)
    for datum in generate_many(writer, 20):
        buffer = BytesIO()
        schemaless_writer(buffer, writer, datum)
        buffer.seek(0)
        assert schemaless_reader(buffer, writer, reader)["added"] is None
