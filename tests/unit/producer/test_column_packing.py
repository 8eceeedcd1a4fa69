"""PredictionBatch columns packed faster, into the same bytes as before: the earlier packing
(kept here as the reference) against the new one on random columns, None included."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.codec import columns
from auditline.codec.avro import avro_long, avro_optional_string

_DOUBLE = struct.Struct("<d")


def reference_optional_doubles(values: Sequence[float | None]) -> bytes:
    """``codec.columns._optional_doubles`` as it was: one ``"Bd" * n`` struct format."""
    if not values:
        return b"\x00"
    if None in values:
        items = b"".join(b"\x00" if v is None else b"\x02" + _DOUBLE.pack(v) for v in values)
    else:
        packed: list[float | None] = [2, 0.0] * len(values)
        packed[1::2] = values
        items = struct.pack("<" + "Bd" * len(values), *packed)
    return avro_long(len(values)) + items + b"\x00"


doubles = st.floats(allow_nan=True, allow_infinity=True)
sizes = {"max_size": 2 * columns._INTERLEAVE_FROM + 3}  # both sides of the interleaving bound


@settings(max_examples=400, deadline=None)
@given(
    values=st.lists(doubles, **sizes) | st.lists(st.none() | doubles, **sizes),
    as_tuple=st.booleans(),
)
def test_optional_doubles_pack_as_before(values: list[float | None], as_tuple: bool) -> None:
    column = tuple(values) if as_tuple else values  # models hold tuples
    assert columns._optional_doubles(column) == reference_optional_doubles(column)


@given(size=st.integers(0, 1100), none_at=st.integers(0, 1099))
def test_a_single_none_anywhere_in_a_long_column(size: int, none_at: int) -> None:
    column: list[float | None] = [float(i) / 3 for i in range(size)]
    if size:
        column[none_at % size] = None
    assert columns._optional_doubles(column) == reference_optional_doubles(column)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.none() | st.sampled_from(["DE", "FR", "basic", "pro", "é", ""])))
def test_optional_strings_encode_as_before(values: list[str | None]) -> None:
    assert b"".join(columns._optional_strings(values)) == b"".join(
        map(avro_optional_string, values)
    )


def test_the_string_memo_stays_bounded() -> None:
    many = [f"v{i}" for i in range(columns._STRINGS_KEPT * 2 + 10)]
    for start in range(0, len(many), 1000):
        chunk = many[start : start + 1000]
        assert b"".join(columns._optional_strings(chunk)) == b"".join(
            map(avro_optional_string, chunk)
        )
    assert len(columns._ENCODED_STRINGS) <= columns._STRINGS_KEPT + 1000
