"""The sink's trusted decode (``sinks/records.py``): every kind it reads gets the rows decoding
through the model gives, payload included; a record the model refuses, and bytes the reader
cannot read, fall to the codec and its error, so nothing is stored that the model would refuse
and the dead-letter reason is the codec's; a kind it could not check as its model does is read
through the model."""

from __future__ import annotations

import math
from io import BytesIO
from typing import Annotated, Any
from uuid import uuid4

import pytest
from auditline.sinks.records import (
    ModelDecoder,
    TrustedDecoder,
    Untrusted,
    compile_reader,
    decoder_for,
    untrusted,
)
from auditline.sinks.rows import Item, Located, Trusted, rows_for
from fastavro import parse_schema, schemaless_writer
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from auditline.catalogue import Catalogue
from auditline.codec import ConfluentCodec, SingleObjectCodec
from auditline.codec.confluent import registry_client
from auditline.codec.single_object import MAGIC
from auditline.contracts import CONTRACTS_VERSION
from auditline.demo import demo_events
from auditline.errors import DecodeError
from auditline.events import DataMovement, Event, Outcome, Prediction, PredictionBatch
from tests.strategies import any_event

CATALOGUE = Catalogue()
CODEC = SingleObjectCodec(CATALOGUE)
DECODER = TrustedDecoder(CODEC)
THROUGH_MODELS = {PredictionBatch, Outcome}


def _current(event: Event) -> Event:
    envelope = event.envelope.model_copy(update={"schema_version": CONTRACTS_VERSION})
    return event.model_copy(update={"envelope": envelope})


EVENTS = st.one_of(any_event(), any_event().map(_current))
"""Events in either contracts layout, half of them in the current one (read trusted)."""


def by_model(data: bytes) -> Item:
    return Located(CODEC.decode(data), "t", 3, 7)


def trusted(data: bytes) -> Item:
    return DECODER.item(data, "t", 3, 7)


def outcome(decode: Any, data: bytes) -> tuple[Any, ...]:
    """What the sink makes of the bytes: the rows it would store, or the dead-letter reason."""
    try:
        item = decode(data)
    except DecodeError as exc:
        return "dead-lettered", type(exc).__name__, str(exc)
    return "stored", same(rows_for([item]).tables)


def same(value: Any) -> Any:
    """Rows comparable with ``==`` (NaN is not equal to itself), types kept."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {key: same(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(same(item) for item in value)
    return value, type(value)


def wire(event: Event, record: dict[str, Any]) -> bytes:
    """``record`` written as ``event``'s kind in the single-object framing (unchecked)."""
    schema = CATALOGUE.for_model(type(event)).schema_in(event.envelope.schema_version)
    buffer = BytesIO(MAGIC + schema.fingerprint)
    buffer.seek(0, 2)
    schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def test_only_kinds_with_validators_of_their_own_are_read_through_their_models() -> None:
    assert set(untrusted(CATALOGUE)) == THROUGH_MODELS
    assert isinstance(decoder_for(CODEC), TrustedDecoder)
    confluent = ConfluentCodec(CATALOGUE, registry_client("mock://records"))
    assert isinstance(decoder_for(confluent), ModelDecoder)  # registry ids: the model's way


@settings(max_examples=400, deadline=None)
@given(EVENTS)
def test_every_event_has_the_rows_and_payload_of_its_model(event: Event) -> None:
    data = CODEC.encode(event)
    item = trusted(data)
    current = event.envelope.schema_version == CONTRACTS_VERSION
    assert isinstance(item, Trusted) == (current and type(event) not in THROUGH_MODELS)
    assert outcome(trusted, data) == outcome(by_model, data)
    if isinstance(item, Trusted):
        assert item.payload == event.model_dump_json().encode()
        assert item.model is type(event)


def test_the_demo_events_are_read_trusted_with_their_rows() -> None:
    for event in demo_events():
        data = CODEC.encode(event)
        assert isinstance(trusted(data), Trusted) or type(event) in THROUGH_MODELS
        assert outcome(trusted, data) == outcome(by_model, data)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list | tuple):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [path] if path and value is not None else []


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    items = list(value)
    items[head] = _replace(items[head], rest, new)
    return items


TRICKY_TEXT = ["", " ", "DE", "de", "DE\n", "D", "EEA", "E" * 17, "0" * 64, "A" * 64, "\x00"]


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the same Avro type, often one a constraint refuses."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-1, 0, 1, 3, 2**31])
    if isinstance(value, float):
        return st.floats() | st.sampled_from([-1.0, -0.0, math.nan, math.inf])
    if isinstance(value, str):
        return st.sampled_from(TRICKY_TEXT) | st.text(max_size=20) | st.just(value.lower())
    if isinstance(value, bytes):
        return st.binary(max_size=8)
    return st.just(value)


@settings(max_examples=600, deadline=None)
@given(EVENTS, st.data())
def test_a_record_the_model_refuses_is_dead_lettered_with_the_models_reason(
    event: Event, data: st.DataObject
) -> None:
    record = event.model_dump()
    leaves = _leaves(record)
    assume(leaves)
    path = data.draw(st.sampled_from(leaves))
    old = record
    for key in path:
        old = old[key]
    try:
        damaged = wire(event, _replace(record, path, data.draw(_like(old))))
    except (ValueError, TypeError, OverflowError):  # not the schema's type: Avro refuses it
        assume(False)
    assert outcome(trusted, damaged) == outcome(by_model, damaged)


@settings(max_examples=600, deadline=None)
@given(EVENTS, st.data())
def test_damaged_bytes_are_read_as_the_codec_reads_them(event: Event, data: st.DataObject) -> None:
    body = bytearray(CODEC.encode(event))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(10, len(body)))
        change = data.draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        byte = data.draw(st.integers(0, 255) | st.sampled_from([0x80, 0x81, 0xFF, 0x7F, 1, 2, 3]))
        if change == "set" and at < len(body):
            body[at] = byte
        elif change == "insert":
            body.insert(at, byte)
        elif change == "delete" and at < len(body):
            del body[at]
        elif change == "cut":
            del body[at:]
    assert outcome(trusted, bytes(body)) == outcome(by_model, bytes(body))


def _movement() -> DataMovement:
    return next(e for e in demo_events() if isinstance(e, DataMovement))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("source", "country"), "de"),
        (("source", "country"), "DE\n"),  # a pattern's $ is the end, as pydantic-core reads it
        (("envelope", "hash"), "A" * 64),
        (("envelope", "sequence"), -1),
        (("envelope", "stream"), ""),
        (("envelope", "schema_version"), 3),
        (("records",), -5),
        (("subject_jurisdictions", 0), "X"),
        (("exporter", "certifications"), [{"scheme": "", "status": "active", "as_of": 1}]),
    ],
)
def test_what_only_the_model_checks_is_checked(path: tuple[Any, ...], value: Any) -> None:
    event = _movement()
    record = event.model_dump()
    if path[0] == "exporter":
        value[0]["as_of"] = event.envelope.event_time.date()
    data = wire(event, _replace(record, path, value))
    reason = outcome(by_model, data)
    assert reason[0] == "dead-lettered"
    assert outcome(trusted, data) == reason


def test_a_record_of_the_wrong_layout_or_framing_is_read_by_the_codec() -> None:
    event = _movement()
    data = CODEC.encode(event)
    assert isinstance(trusted(data), Trusted)
    layout_1 = CODEC.encode(
        event.model_copy(
            update={"envelope": event.envelope.model_copy(update={"schema_version": 1})}
        )
    )
    assert isinstance(trusted(layout_1), Located)
    assert outcome(trusted, layout_1) == outcome(by_model, layout_1)
    limited = TrustedDecoder(SingleObjectCodec(CATALOGUE, max_message_bytes=len(data) - 1))
    with pytest.raises(DecodeError, match="exceeds the"):
        limited.item(data, "t", 0, 0)
    with pytest.raises(DecodeError, match="not the single-object marker"):
        trusted(b"\x00" + data[1:])


class _Named(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str


class _Lowered(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Annotated[str, StringConstraints(to_lower=True)]


class _Stripped(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    name: str


class _Validated(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str

    @field_validator("name")
    @classmethod
    def _title(cls, value: str) -> str:
        return value.title()


class _Either(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str | int


def _schema(*fields: tuple[str, Any]) -> dict[str, Any]:
    definition = {"type": "record", "name": f"R{uuid4().hex}", "fields": [
        {"name": name, "type": kind} for name, kind in fields
    ]}  # fmt: skip
    parsed: dict[str, Any] = parse_schema(definition)
    return parsed


@pytest.mark.parametrize(
    ("model", "schema", "why"),
    [
        (_Lowered, _schema(("name", "string")), "changes strings"),
        (_Stripped, _schema(("name", "string")), "config"),
        (_Validated, _schema(("name", "string")), "validators"),
        (_Either, _schema(("name", ["string", "long"])), "union"),
        (_Named, _schema(("name", "long")), "from"),
        (_Named, _schema(("other", "string")), "fields"),
        (_Named, _schema(("name", "string"), ("extra", "string")), "fields"),
    ],
)
def test_a_model_the_reader_could_not_check_as_pydantic_does_is_refused(
    model: type[Any], schema: dict[str, Any], why: str
) -> None:
    with pytest.raises(Untrusted, match=why):
        compile_reader(model, schema)


def test_a_prediction_is_read_with_its_maps_and_optional_values() -> None:
    event = next(e for e in demo_events() if isinstance(e, Prediction))
    item = trusted(CODEC.encode(event))
    assert isinstance(item, Trusted)
    view = item.event
    assert view.numeric_features == dict(event.numeric_features)
    assert view.location.country == event.location.country
    assert view.envelope.event_id == event.envelope.event_id
    assert view.envelope.event_time == event.envelope.event_time
