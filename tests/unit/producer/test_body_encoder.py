"""The compiled body encoders write what fastavro writes, byte for byte, for every event kind;
what they do not take is left to fastavro."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from io import BytesIO
from types import SimpleNamespace
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.events import DriftAlert, Event, Prediction
from auditline.producer import wire
from auditline.producer.sealing import body_schema, body_writer, fastavro_body
from tests.strategies import any_event, events_of

KINDS = [entry.model for entry in Catalogue()]
ENCODERS = {model: wire.body_encoder(body_schema(model.SCHEMA)) for model in KINDS}


def test_every_catalogued_kind_has_a_compiled_encoder() -> None:
    assert [model.__name__ for model, encode in ENCODERS.items() if encode is None] == []


@settings(max_examples=600, deadline=None)
@given(event=any_event())
def test_compiled_bodies_equal_fastavro_without_falling_back(event: Event) -> None:
    encode = ENCODERS[type(event)]
    assert encode is not None
    assert encode(event) == fastavro_body(event)  # raises if the encoder refused the event
    assert body_writer(type(event))(event) == fastavro_body(event)


@settings(max_examples=100, deadline=None)
@given(event=events_of(Prediction), score=st.floats(allow_nan=True, allow_infinity=True))
def test_doubles_nan_and_infinities_included(event: Prediction, score: float) -> None:
    changed = event.model_copy(update={"score": score, "numeric_features": {"x": score}})
    assert body_writer(Prediction)(changed) == fastavro_body(changed)


RECORD = {
    "type": "record",
    "name": "t.R",
    "fields": [
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "flag", "type": "boolean"},
        {"name": "raw", "type": "bytes"},
        {"name": "kind", "type": {"type": "enum", "name": "t.K", "symbols": ["a", "b"]}},
        {"name": "again", "type": ["t.K", "null"]},
        {"name": "inner", "type": {"type": "record", "name": "t.I",
                                   "fields": [{"name": "n", "type": "long"}]}},
        {"name": "inners", "type": {"type": "array", "items": "t.I"}},
        {"name": "table", "type": {"type": "map", "values": {"type": "array", "items": "double"}}},
        {"name": "text", "type": "string"},
    ],
}  # fmt: skip


def fastavro_of(schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, parse_schema(schema), value)
    return buffer.getvalue()


def as_object(value: Any) -> Any:
    """Records as objects with attributes (what the encoder reads), the rest as it is."""
    if isinstance(value, dict) and "n" in value:
        return SimpleNamespace(**value)
    if isinstance(value, list):
        return [as_object(v) for v in value]
    return value


@settings(max_examples=200, deadline=None)
@given(
    when=st.datetimes(timezones=st.just(UTC)),
    day=st.dates(),
    flag=st.booleans(),
    raw=st.binary(max_size=300),
    kind=st.sampled_from(["a", "b"]),
    again=st.none() | st.sampled_from(["a", "b"]),
    numbers=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5),
    table=st.dictionaries(st.text(max_size=5), st.lists(st.floats(), max_size=3), max_size=3),
    text=st.text(max_size=300),
)
def test_every_supported_construct_equals_fastavro(
    when: datetime, day: date, flag: bool, raw: bytes, kind: str, again: str | None,
    numbers: list[int], table: dict[str, list[float]], text: str,
) -> None:  # fmt: skip
    value = {
        "when": when, "day": day, "id": uuid.uuid4(), "flag": flag, "raw": raw, "kind": kind,
        "again": again, "inner": {"n": len(numbers)}, "inners": [{"n": n} for n in numbers],
        "table": table, "text": text,
    }  # fmt: skip
    encode = wire.body_encoder(parse_schema(RECORD))
    assert encode is not None
    obj = SimpleNamespace(**{k: as_object(v) for k, v in value.items()})
    assert encode(obj) == fastavro_of(RECORD, value)


@pytest.mark.parametrize(
    "field_type",
    [
        ["null", "string", "long"],  # a union of several types
        ["string", "long"],
        {"type": "fixed", "name": "t.F", "size": 4},
        "float",
        {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2},
    ],
)
def test_constructs_left_to_fastavro(field_type: Any) -> None:
    schema = {"type": "record", "name": "t.U", "fields": [{"name": "x", "type": field_type}]}
    assert wire.body_encoder(parse_schema(schema)) is None


def test_a_recursive_record_is_left_to_fastavro() -> None:
    schema = {
        "type": "record",
        "name": "t.Node",
        "fields": [{"name": "next", "type": ["null", "t.Node"]}],
    }
    assert wire.body_encoder(parse_schema(schema)) is None


def test_values_the_encoder_refuses_raise_for_the_fallback() -> None:
    encode = wire.body_encoder(parse_schema(RECORD))
    assert encode is not None
    naive = SimpleNamespace(when=datetime(2024, 1, 1))  # naive: fastavro's local-time reading
    with pytest.raises(TypeError):
        encode(naive)
    unknown = SimpleNamespace(
        when=datetime.now(UTC), day=date.today(), id=uuid.uuid4(), flag=True, raw=b"", kind="zz"
    )
    with pytest.raises(KeyError):  # a symbol the enum lacks: fastavro refuses it
        encode(unknown)


@settings(max_examples=20, deadline=None)
@given(alert=events_of(DriftAlert))
def test_the_body_writer_leaves_what_the_encoder_refuses_to_fastavro(alert: DriftAlert) -> None:
    naive = alert.window_start.replace(tzinfo=None)  # only an unchecked model holds one
    odd = alert.model_copy(update={"window_start": naive})
    assert body_writer(DriftAlert)(odd) == fastavro_body(odd)  # fastavro: local time


@settings(max_examples=300, deadline=None)
@given(value=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varint_equals_avro_long(value: int) -> None:
    assert wire.varint(value) == wire.avro_long(value)


@pytest.mark.parametrize("value", [0, 1, -1, 63, 64, 127, 128, 8191, 8192, 2**20, 2**27, 2**28])
def test_varint_at_its_byte_boundaries(value: int) -> None:
    assert wire.varint(value) == wire.avro_long(value)
    assert wire.varint(-value) == wire.avro_long(-value)


def test_uuid_texts_are_the_ids_in_their_canonical_form() -> None:
    source = wire.UuidSource(batch=16)
    drawn = [source.next_text() for _ in range(100)]  # several refills
    assert all(str(uid).encode() == text for uid, text in drawn)
    assert len({uid for uid, _ in drawn}) == 100
    assert {uid.version for uid, _ in drawn} == {4}
    assert {uid.variant for uid, _ in drawn} == {uuid.RFC_4122}
