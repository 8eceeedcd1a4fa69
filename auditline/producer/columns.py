"""Hand-written Avro encoding of a ``PredictionBatch`` body: its columns packed at C speed (pure).

fastavro writes each value of a ``["null", "double"]`` array by trying the union's branches in
turn: about 1 µs a value, 10 ms for a batch of 1,000 predictions of 8 features, the whole cost
of recording predictions at volume. Here a column without nulls is packed by one
``struct.pack`` call (a union index and a double per value). The layout follows
``schemas/auditline.events.PredictionBatch.avsc`` field by field;
``tests/unit/producer/test_columns.py`` holds these bytes equal to fastavro's for generated
batches, so a schema change that this module does not follow fails the build.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain

from auditline.events import PredictionBatch
from auditline.producer.wire import avro_long, avro_optional_string, avro_string

FIELDS = (
    "batch_id", "model_name", "model_version", "location", "count", "sample_rate",
    "subject_jurisdictions", "numeric_features", "categorical_features", "scores", "labels",
    "latency_ms", "artifact_digest",
)  # fmt: skip
"""The body's fields in schema order (the test compares them with the schema)."""

_DOUBLE = struct.Struct("<d")


def prediction_batch_body(batch: PredictionBatch) -> bytes:
    location, subjects = batch.location, batch.subject_jurisdictions
    return b"".join(
        (
            avro_string(batch.batch_id), avro_string(batch.model_name),
            avro_string(batch.model_version), avro_string(location.country),
            avro_optional_string(location.provider), avro_optional_string(location.region),
            avro_long(batch.count), _DOUBLE.pack(batch.sample_rate),
            _array(len(subjects), _optional_strings(subjects)),
            _array(len(batch.numeric_features), (
                avro_string(c.name) + _optional_doubles(c.values) for c in batch.numeric_features
            )),
            _array(len(batch.categorical_features), (
                avro_string(c.name) + _array(len(c.values), _optional_strings(c.values))
                for c in batch.categorical_features
            )),
            _doubles(batch.scores),
            _array(len(batch.labels), (avro_string(label) for label in batch.labels)),
            _DOUBLE.pack(batch.latency_ms), avro_optional_string(batch.artifact_digest),
        )
    )  # fmt: skip


def _array(count: int, items: Iterable[bytes]) -> bytes:
    """One block of ``count`` encoded items and the end marker (an empty array: the marker)."""
    if not count:
        return b"\x00"
    return avro_long(count) + b"".join(items) + b"\x00"


def _optional_strings(values: Sequence[str | None]) -> Iterable[bytes]:
    return map(_optional_string, values)


@lru_cache(maxsize=4096)
def _optional_string(value: str | None) -> bytes:
    """Jurisdictions and categories repeat: each is encoded once."""
    return avro_optional_string(value)


def _optional_doubles(values: Sequence[float | None]) -> bytes:
    if not values:
        return b"\x00"
    if None in values:
        items = b"".join(b"\x00" if v is None else b"\x02" + _DOUBLE.pack(v) for v in values)
    else:  # union branch 1 (zig-zag 2) and the value, for every value in one call
        packed = chain.from_iterable((2, v) for v in values)
        items = struct.pack("<" + "Bd" * len(values), *packed)
    return avro_long(len(values)) + items + b"\x00"


def _doubles(values: Sequence[float]) -> bytes:
    if not values:
        return b"\x00"
    return avro_long(len(values)) + struct.pack(f"<{len(values)}d", *values) + b"\x00"
