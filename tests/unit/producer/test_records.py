"""The sealing loop's constructors make the same values as the dataclasses' own."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditline.producer.records import (
    Receipt,
    SpoolRecord,
    encode_frame,
    new_receipt,
    new_record,
    parse_frames,
)

TEXT = st.text(min_size=1, max_size=20)
COUNT = st.integers(min_value=0, max_value=2**40)


@given(TEXT, st.binary(max_size=20), st.binary(max_size=200), TEXT, COUNT, COUNT, COUNT,
       st.binary(min_size=32, max_size=32))  # fmt: skip
def test_new_record_is_the_dataclass_record(
    topic: str, key: bytes, value: bytes, stream: str, sequence: int, ts: int, index: int,
    digest: bytes,
) -> None:  # fmt: skip
    fields = (topic, key, value, stream, sequence, ts, index, digest)
    made, reference = new_record(*fields), SpoolRecord(*fields)
    assert made == reference and hash(made) == hash(reference)
    assert parse_frames(encode_frame(made, topic.encode(), stream.encode()))[0] == [reference]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.value = b""  # type: ignore[misc]


@given(st.uuids(), TEXT, COUNT, st.text(min_size=64, max_size=64))
def test_new_receipt_is_the_dataclass_receipt(
    event_id: uuid.UUID, stream: str, sequence: int, digest_hex: str
) -> None:
    made = new_receipt(event_id, stream, sequence, digest_hex)
    assert made == Receipt(event_id, stream, sequence, digest_hex)
    assert repr(made) == repr(Receipt(event_id, stream, sequence, digest_hex))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.sequence = 0  # type: ignore[misc]
