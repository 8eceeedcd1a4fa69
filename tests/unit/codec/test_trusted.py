"""The codec's trusted decode (``auditline/codec/trusted.py``): every kind it reads gives the
models validation gives (the same types field by field, the same JSON), a record the models
refuse and bytes the reader cannot read raise the error the fastavro + ``model_validate`` path
raises, and a kind it could not check as its model does is read through its model."""

from __future__ import annotations

import copy
import math
import pickle
import re
from datetime import UTC, date, datetime
from io import BytesIO
from typing import Annotated, Any
from uuid import UUID, uuid4

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator

from auditline.catalogue import Catalogue
from auditline.codec import ConfluentCodec, SingleObjectCodec
from auditline.codec.confluent import registry_client
from auditline.codec.single_object import HEADER_SIZE, MAGIC
from auditline.codec.trusted import Untrusted, compile_reader, trusted_reader, untrusted
from auditline.contracts import CONTRACTS_VERSION
from auditline.demo import demo_events
from auditline.errors import DecodeError
from auditline.events import DataMovement, Event, Outcome, PredictionBatch
from tests.strategies import any_event

CATALOGUE = Catalogue()
SINGLE = SingleObjectCodec(CATALOGUE)
REFERENCE = SingleObjectCodec(CATALOGUE, trusted=False)
CONFLUENT = ConfluentCodec(CATALOGUE, registry_client("mock://trusted"))
CONFLUENT_REFERENCE = ConfluentCodec(CATALOGUE, CONFLUENT.client, trusted=False)
THROUGH_MODELS = {PredictionBatch, Outcome}


def _current(event: Event) -> Event:
    envelope = event.envelope.model_copy(update={"schema_version": CONTRACTS_VERSION})
    return event.model_copy(update={"envelope": envelope})


EVENTS = st.one_of(any_event(), any_event().map(_current))
"""Events in either contracts layout, half of them in the current one (read trusted)."""


def same(trusted: Any, validated: Any, path: str = "") -> None:
    """``trusted`` is what validation made: the same types, values and model slots, all the
    way down (NaN equal to itself, the sign of zero kept)."""
    assert type(trusted) is type(validated), path
    if isinstance(validated, BaseModel):
        assert trusted.__pydantic_fields_set__ == validated.__pydantic_fields_set__, path
        assert trusted.__pydantic_extra__ == validated.__pydantic_extra__, path
        assert trusted.__pydantic_private__ == validated.__pydantic_private__, path
        assert list(trusted.__dict__) == list(validated.__dict__), path
        for name, value in validated.__dict__.items():
            same(trusted.__dict__[name], value, f"{path}.{name}")
    elif isinstance(validated, tuple | list):
        assert len(trusted) == len(validated), path
        for i, (mine, theirs) in enumerate(zip(trusted, validated, strict=True)):
            same(mine, theirs, f"{path}[{i}]")
    elif isinstance(validated, dict):
        assert list(trusted) == list(validated), path
        for key, value in validated.items():
            same(trusted[key], value, f"{path}[{key!r}]")
    elif isinstance(validated, float):
        assert repr(trusted) == repr(validated), path
    elif isinstance(validated, datetime):
        assert (trusted, trusted.tzinfo, trusted.fold) == (
            validated, validated.tzinfo, validated.fold,
        ), path  # fmt: skip
    else:
        assert trusted == validated, path


def outcome(codec: Any, data: bytes) -> tuple[Any, ...]:
    """What a consumer makes of the bytes: the event and body, or the dead-letter reason."""
    try:
        event, body = codec.decode_with_body(data)
    except DecodeError as exc:
        return "refused", type(exc).__name__, str(exc)
    return "decoded", event, body


def agree(data: bytes, codec: Any = SINGLE, reference: Any = REFERENCE) -> tuple[Any, ...]:
    """Both decodes of ``data`` agree; the reference's outcome."""
    mine, theirs = outcome(codec, data), outcome(reference, data)
    assert mine[0] == theirs[0], (mine, theirs)
    if theirs[0] == "refused":
        assert mine == theirs
    else:
        same(mine[1], theirs[1])
        assert mine[2] == theirs[2]
        assert mine[1].model_dump_json() == theirs[1].model_dump_json()
        assert repr(mine[1].model_dump()) == repr(theirs[1].model_dump())  # NaN as nan
    return theirs


def _has_nan(value: Any) -> bool:
    """Whether ``value`` holds a NaN (not equal to itself, so neither is an event holding it)."""
    if isinstance(value, BaseModel):
        return _has_nan(value.__dict__)
    if isinstance(value, dict):
        return any(_has_nan(item) for item in value.values())
    if isinstance(value, tuple | list):
        return any(_has_nan(item) for item in value)
    return isinstance(value, float) and math.isnan(value)


def read_trusted(data: bytes) -> Event | None:
    """The trusted reader's event, or None where it fails (the codec then reads the bytes)."""
    entry, writer = CATALOGUE.for_fingerprint(bytes(data[2:10]))
    try:
        event: Event = compile_reader(entry.model, writer.parsed)(data, 10)
    except Exception:  # noqa: BLE001 (failing is the reader's answer)
        return None
    return event


def wire(event: Event, record: dict[str, Any]) -> bytes:
    """``record`` written as ``event``'s kind in the single-object framing (unchecked)."""
    schema = CATALOGUE.for_model(type(event)).schema_in(event.envelope.schema_version)
    buffer = BytesIO(MAGIC + schema.fingerprint)
    buffer.seek(0, 2)
    schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def test_only_kinds_with_validators_of_their_own_are_read_through_their_models() -> None:
    assert set(untrusted(CATALOGUE)) == THROUGH_MODELS


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_every_event_decodes_to_the_models_validation_gives(event: Event) -> None:
    data = SINGLE.encode(event)
    current = event.envelope.schema_version == CONTRACTS_VERSION
    trusted = read_trusted(data) if current and type(event) not in THROUGH_MODELS else None
    assert (trusted is not None) == (current and type(event) not in THROUGH_MODELS)
    reference = agree(data)
    assert reference[0] == "decoded"
    if trusted is not None:
        same(trusted, reference[1])
        same(copy.deepcopy(trusted), reference[1])
        same(pickle.loads(pickle.dumps(trusted)), reference[1])
        assert trusted.model_dump_json() == event.model_dump_json()
        assert trusted == event or _has_nan(event)
        try:
            expected = hash(reference[1])
        except TypeError:  # a map field: unhashable, as validation's
            with pytest.raises(TypeError):
                hash(trusted)
        else:
            assert hash(trusted) == expected


@settings(max_examples=150, deadline=None)
@given(EVENTS)
def test_the_registry_framing_decodes_as_its_reference(event: Event) -> None:
    agree(CONFLUENT.encode(event), CONFLUENT, CONFLUENT_REFERENCE)


def test_the_demo_events_are_read_trusted() -> None:
    for event in demo_events():
        data = SINGLE.encode(event)
        assert read_trusted(data) is not None or type(event) in THROUGH_MODELS
        agree(data)


def test_prepared_kinds_have_their_readers_before_their_first_message() -> None:
    codec = SingleObjectCodec(Catalogue("auditline"))
    codec.prepare([DataMovement, PredictionBatch])
    prepared = {header: read for header, read in codec._trusted.items() if read is not None}
    assert len(prepared) == 2  # nothing else compiled, and neither kind left to its model
    movement = next(e for e in demo_events() if isinstance(e, DataMovement))
    data = codec.encode(movement)
    assert data[:HEADER_SIZE] in prepared
    assert codec.decode(data) == SINGLE.decode(data)


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


TRICKY_TEXT = ["", " ", "DE", "de", "DE\n", "D", "EEA", "E" * 17, "0" * 64, "A" * 64, "\x00",
               "é", "0" * 63 + "é", "Ü" * 2]  # fmt: skip
UUID_TEXT = [
    "{12345678-1234-5678-1234-567812345678}", "urn:uuid:12345678-1234-5678-1234-567812345678",
    "12345678123456781234567812345678", "ABCDEF78-1234-5678-1234-567812345678",
    "1234_678-1234-5678-1234-567812345678", "+2345678-1234-5678-1234-567812345678",
    " 2345678-1234-5678-1234-56781234567 ", "12345678-1234-5678-1234-5678123456789",
    "١٢٣٤٥٦٧٨-1234-5678-1234-567812345678", "", "-" * 36,
]  # fmt: skip


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the same Avro type, often one a constraint or conversion refuses."""
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
    if isinstance(value, UUID):
        return st.sampled_from(UUID_TEXT) | st.uuids().map(str) | st.text(max_size=40)
    if isinstance(value, datetime):
        extremes = [-62135596800000, 253402300799999, 253402300800000, -(2**62), 0, -1]
        return st.sampled_from(extremes) | st.integers(-(2**63), 2**63 - 1)
    if isinstance(value, date):
        return st.sampled_from([-719162, 2932896, 2932897, -(2**31), 0]) | st.integers(
            -(2**31), 2**31 - 1
        )
    return st.just(value)


@settings(max_examples=400, deadline=None)
@given(EVENTS, st.data())
def test_a_record_the_model_refuses_is_refused_with_the_models_reason(
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
    agree(damaged)


@settings(max_examples=400, deadline=None)
@given(EVENTS, st.data())
def test_damaged_bytes_are_read_as_the_reference_reads_them(
    event: Event, data: st.DataObject
) -> None:
    body = bytearray(SINGLE.encode(event))
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
    agree(bytes(body))


@settings(max_examples=150, deadline=None)
@given(st.lists(EVENTS, min_size=2, max_size=6), st.data())
def test_remembered_records_never_stand_for_other_bytes(
    events: list[Event], data: st.DataObject
) -> None:
    """Nested records remembered from one message (locations, parties) are taken again only
    for the same bytes: a run of messages, some cut short, decodes as each one alone does."""
    for event in events:
        message = SINGLE.encode(event)
        agree(message[: data.draw(st.integers(10, len(message)))])
        agree(message)


def test_a_remembered_record_shared_by_two_events_stays_as_each_event_had_it() -> None:
    event = _movement()
    first, second = (SINGLE.decode(SINGLE.encode(event)) for _ in range(2))
    assert isinstance(first, DataMovement) and isinstance(second, DataMovement)
    assert first.source is second.source  # the same bytes: the same frozen instance
    moved = second.model_copy(update={"source": second.source.model_copy(update={"region": "x"})})
    assert first.source.region == event.source.region and moved.source.region == "x"
    assert first.source.model_fields_set == event.source.model_fields_set
    with pytest.raises(ValidationError, match="frozen"):
        first.source.country = "FR"  # type: ignore[misc]
    same(first, REFERENCE.decode(SINGLE.encode(event)))


def _movement() -> DataMovement:
    return next(e for e in demo_events() if isinstance(e, DataMovement))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("source", "country"), "de"),
        (("source", "country"), "DE\n"),  # a pattern's $ is the end, as pydantic-core reads it
        (("source", "country"), "DÉ"),
        (("envelope", "hash"), "A" * 64),
        (("envelope", "hash"), "0" * 63 + "\n"),
        (("envelope", "hash"), "0" * 62 + "é"),
        (("envelope", "sequence"), -1),
        (("envelope", "stream"), ""),
        (("envelope", "schema_version"), 3),
        (("records",), -5),
        (("subject_jurisdictions", 0), "X"),
        (("exporter", "certifications"), [{"scheme": "", "status": "active", "as_of": 1}]),
        (("envelope", "event_id"), "not-a-uuid"),
    ],
)
def test_what_only_the_model_checks_is_checked(path: tuple[Any, ...], value: Any) -> None:
    event = _movement()
    record = event.model_dump()
    if path[0] == "exporter":
        value[0]["as_of"] = event.envelope.event_time.date()
    if path[0] == "subject_jurisdictions":
        record["subject_jurisdictions"] = ["DE"]
    data = wire(event, _replace(record, path, value))
    assert agree(data)[0] == "refused"


@pytest.mark.parametrize("text", UUID_TEXT)
def test_an_event_id_is_read_as_uuid_reads_its_text(text: str) -> None:
    event = _movement()
    agree(wire(event, _replace(event.model_dump(), ("envelope", "event_id"), text)))


def test_a_body_of_an_earlier_layout_or_too_long_is_read_by_the_reference() -> None:
    event = _movement()
    data = SINGLE.encode(event)
    assert read_trusted(data) is not None
    layout_1 = SINGLE.encode(
        event.model_copy(
            update={"envelope": event.envelope.model_copy(update={"schema_version": 1})}
        )
    )
    assert read_trusted(layout_1) is None
    assert agree(layout_1)[0] == "decoded"
    limited = SingleObjectCodec(CATALOGUE, max_message_bytes=len(data) - 1)
    with pytest.raises(DecodeError, match="exceeds the"):
        limited.decode(data)
    assert agree(bytearray(data))[0] == "decoded"  # not bytes: read by the reference path


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


class _Extra(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    name: str


class _Private(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    _cache: int = 0


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
        (_Extra, _schema(("name", "string")), "extra"),
        (_Private, _schema(("name", "string")), "private"),
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


class _CompiledPattern(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Annotated[str, StringConstraints(pattern=re.compile("^a$", re.IGNORECASE))]


def test_a_compiled_pattern_is_refused_its_flags_would_be_lost() -> None:
    with pytest.raises(Untrusted, match="compiled pattern"):
        compile_reader(_CompiledPattern, _schema(("name", "string")))


def test_a_model_and_schema_the_compiler_misreads_are_read_by_the_model() -> None:
    """A schema made nullable where its model is not (a drift the compiler does not name): no
    trusted reader, so the consumer reads through the model, never crashes on the compiler."""
    assert trusted_reader(_Named, _schema(("name", ["null", "string"]))) is None


def test_each_decoded_event_has_a_fields_set_of_its_own() -> None:
    first, second = (SINGLE.decode(SINGLE.encode(_movement())) for _ in range(2))
    assert first.model_fields_set == second.model_fields_set
    assert first.model_fields_set is not second.model_fields_set
    assert first.envelope.model_fields_set is not second.envelope.model_fields_set


def test_times_and_dates_are_what_validation_makes_of_them() -> None:
    event = _movement()
    trusted = read_trusted(SINGLE.encode(event))
    assert trusted is not None
    when = trusted.envelope.event_time
    assert type(when) is datetime and when.tzinfo is UTC and when == event.envelope.event_time
    assert when.microsecond % 1000 == 0
