"""The hand-written PredictionBatch body equals fastavro's, byte for byte (generated batches,
nulls, NaN and infinities included), and follows the schema's fields."""

from __future__ import annotations

import math
from io import BytesIO

from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.contracts import bundled_raw_schemas
from auditline.events import PredictionBatch
from auditline.producer.columns import FIELDS, prediction_batch_body
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
