"""The hand-written PredictionBatch body equals fastavro's, byte for byte (generated batches,
nulls, NaN and infinities included), follows the schema's fields, and reads back as fastavro
reads it; cut or extended messages are refused with a reason."""

from __future__ import annotations

import math
import struct
from io import BytesIO
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.codec.body import read_prediction_batch_record, read_record, to_event
from auditline.codec.columns import FIELDS, prediction_batch, prediction_batch_body
from auditline.contracts import CONTRACTS_VERSION, bundled_raw_schemas
from auditline.errors import DecodeError, SchemaMismatchError
from auditline.events import PredictionBatch
from auditline.producer.sealing import body_schema
from tests.strategies import events_of

SCHEMA = body_schema(PredictionBatch.SCHEMA)


def fastavro_body(batch: PredictionBatch) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, SCHEMA, batch.model_dump(exclude={"envelope"}))
    return buffer.getvalue()


def test_fields_follow_the_schema() -> None:
    fields = [f["name"] for f in dict(bundled_raw_schemas())[PredictionBatch.SCHEMA]["fields"]]
    assert tuple(fields[1:]) == FIELDS


@settings(max_examples=200, deadline=None)
@given(events_of(PredictionBatch))
def test_generated_batches_encode_as_fastavro_does(batch: PredictionBatch) -> None:
    assert prediction_batch_body(batch) == fastavro_body(batch)


@settings(max_examples=100, deadline=None)
@given(
    events_of(PredictionBatch),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True)), min_size=1, max_size=50),
)
def test_columns_with_nulls_and_special_floats(
    sample: PredictionBatch, values: list[float | None]
) -> None:
    scores = [0.0 if v is None or math.isnan(v) else v for v in values]
    batch = PredictionBatch.model_validate({
        **sample.model_dump(), "count": len(values), "subject_jurisdictions": [],
        "numeric_features": [{"name": "x", "values": values}, {"name": "y", "values": scores}],
        "categorical_features": [], "scores": scores, "labels": ["a"] * len(values),
    })  # fmt: skip
    assert prediction_batch_body(batch) == fastavro_body(batch)


def current(batch: PredictionBatch) -> PredictionBatch:
    """The batch in the current contracts layout (the one whose columns are read by hand)."""
    envelope = batch.envelope.model_copy(update={"schema_version": CONTRACTS_VERSION})
    return batch.model_copy(update={"envelope": envelope})


def framed(batch: PredictionBatch) -> bytes:
    return SingleObjectCodec(Catalogue()).encode(current(batch))


@settings(max_examples=200, deadline=None)
@given(events_of(PredictionBatch))
def test_generated_batches_decode_as_fastavro_does(batch: PredictionBatch) -> None:
    data = framed(batch)
    entry = Catalogue().for_model(PredictionBatch)
    assert read_prediction_batch_record(data, 10) == read_record(
        data, 10, entry.schema.parsed, None
    )
    assert SingleObjectCodec(Catalogue()).decode(data) == current(batch)


@settings(max_examples=200, deadline=None)
@given(events_of(PredictionBatch))
def test_a_batch_built_without_validating_each_value_equals_the_validated_one(
    batch: PredictionBatch,
) -> None:
    record = read_prediction_batch_record(framed(batch), 10)
    built, validated = prediction_batch(record), to_event(PredictionBatch, record)
    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    for field in ("subject_jurisdictions", "scores", "labels"):
        assert type(getattr(built, field)) is tuple
    assert all(type(c.values) is tuple for c in built.numeric_features)


@pytest.mark.parametrize(
    ("change", "wrong"),
    [
        ({"subject_jurisdictions": ["DE", "de"]}, "subject"),  # not a jurisdiction
        ({"scores": [0.5]}, "count"),  # a column shorter than count
        ({"numeric_features": [{"name": "", "values": [1.0, 2.0]}]}, "name"),
        ({"categorical_features": [{"name": "c", "values": ["a"]}]}, "count"),
        ({"count": -1}, "count"),
        (  # two columns of one name: each is checked
            {
                "numeric_features": [
                    {"name": "x", "values": [1.0]},
                    {"name": "x", "values": [1.0, 2.0]},
                ]
            },
            "count",
        ),
    ],
)
@settings(max_examples=5, deadline=None)
@given(sample=events_of(PredictionBatch))
def test_what_the_model_refuses_is_refused(
    sample: PredictionBatch, change: dict[str, Any], wrong: str
) -> None:
    """A record the model refuses (``wrong``: what is wrong) is refused by the trusted build."""
    record = {
        "envelope": {}, "batch_id": "b", "model_name": "m", "model_version": "1",
        "location": {"country": "DE", "provider": None, "region": None}, "count": 2,
        "sample_rate": 1.0, "subject_jurisdictions": ["DE", "FR"],
        "numeric_features": [{"name": "x", "values": [1.0, None]}],
        "categorical_features": [], "scores": [0.1, 0.2], "labels": [], "latency_ms": 1.0,
        "artifact_digest": None,
    }  # fmt: skip
    good = {**record, "envelope": read_prediction_batch_record(framed(sample), 10)["envelope"]}
    assert prediction_batch(good) == to_event(PredictionBatch, good)
    bad = {**good, **change}
    with pytest.raises(ValueError):
        prediction_batch(bad)
    with pytest.raises(SchemaMismatchError, match=wrong):
        to_event(PredictionBatch, bad)


@settings(max_examples=50, deadline=None)
@given(events_of(PredictionBatch), st.data())
def test_cut_or_extended_batches_are_refused_with_a_reason(
    batch: PredictionBatch, data: st.DataObject
) -> None:
    whole = framed(batch)
    cut = data.draw(st.integers(min_value=11, max_value=len(whole) - 1))
    with pytest.raises(DecodeError):
        SingleObjectCodec(Catalogue()).decode(whole[:cut])
    with pytest.raises(SchemaMismatchError, match="bytes left"):
        SingleObjectCodec(Catalogue()).decode(whole + b"\x00")


def test_arrays_written_in_several_blocks_are_read() -> None:
    """Other writers (Java's) may split an array into blocks, with a byte size (negative count)."""
    from auditline.codec.columns import _Reader

    doubles = struct.pack("<BdBd", 2, 1.5, 2, 2.5)  # union index 1 (zig-zag 2) before each value
    data = b"\x03\x24" + doubles + b"\x02\x00" + b"\x00"  # -2 items (18 bytes); 1 null; end
    assert _Reader(data, 0).optional_doubles() == [1.5, 2.5, None]


def test_a_block_of_equal_strings_reads_as_item_by_item() -> None:
    """Equal short strings are read with one comparison; a different one, a null or a cut
    block takes the item by item path, with the same result."""
    from auditline.codec.columns import _Reader

    de, fr = b"\x02\x04DE", b"\x02\x04FR"
    assert _Reader(b"\x06" + de * 3 + b"\x00", 0).optional_strings() == ["DE"] * 3
    assert _Reader(b"\x06" + de * 2 + fr + b"\x00", 0).optional_strings() == ["DE", "DE", "FR"]
    assert _Reader(b"\x06" + de + b"\x00" + de + b"\x00", 0).optional_strings() == [
        "DE", None, "DE",
    ]  # fmt: skip
    two_blocks = b"\x04" + de * 2 + b"\x02" + fr + b"\x00"
    reader = _Reader(two_blocks, 0)
    assert (reader.optional_strings(), reader.pos) == (["DE", "DE", "FR"], len(two_blocks))
    with pytest.raises(EOFError):
        _Reader(b"\x06" + de * 2 + de[:3], 0).optional_strings()


def test_crafted_counts_and_varints_are_refused_without_allocating_or_spinning() -> None:
    """A block count of 3e8 in a tiny message, and a run of 0xFF bytes where a varint is due."""
    from auditline.codec.columns import _Reader

    huge = b"\x80\xb0\x8f\xa2\x02"  # zig-zag 300,000,000
    with pytest.raises(EOFError):
        _Reader(huge + b"\x02" * 200, 0).optional_doubles()
    with pytest.raises(EOFError):
        _Reader(huge + b"\x02" * 200, 0).optional_strings()
    with pytest.raises(ValueError, match="varint"):
        _Reader(b"\xff" * 80_000, 0).long()
    with pytest.raises(ValueError, match="negative"):  # one item: branch 1, length -2
        _Reader(b"\x02" + b"\x02\x03" + b"ab\x00", 0).optional_strings()
