"""Hand-written Avro of a ``PredictionBatch`` body: columns packed and unpacked at C speed (pure).

fastavro writes each value of a ``["null", "double"]`` array by trying the union's branches in
turn: about 1 µs a value, 10 ms for a batch of 1,000 predictions of 8 features, the whole cost
of recording predictions at volume. Here a column without nulls is packed at C speed (a union
index and a double per value: one ``struct.pack`` call, and for long columns the doubles packed
first and interleaved with the union indexes by byte planes), and repeated strings are looked up
from a memo of their encodings. The layout follows
``schemas/auditline.events.PredictionBatch.avsc`` field by field;
Reading is the mirror image (fastavro took 5 ms to read the same batch; the worker reads every
batch). ``tests/unit/test_columns.py`` holds these bytes and records equal to fastavro's for
generated batches, so a schema change that this module does not follow fails the build.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader
from pydantic import TypeAdapter

from auditline.codec.avro import AvroReader, avro_long, avro_optional_string, avro_string
from auditline.events import PredictionBatch
from auditline.events.types import Jurisdiction

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
    """Jurisdictions and categories repeat: each is encoded once (while fewer than
    ``_STRINGS_KEPT`` distinct ones were seen) and looked up at C speed."""
    try:
        return list(map(_ENCODED_STRINGS.__getitem__, values))
    except KeyError:  # new values: this call's own table (another thread may clear the memo)
        encoded = {v: avro_optional_string(v) for v in set(values)}
        if len(_ENCODED_STRINGS) > _STRINGS_KEPT:
            _ENCODED_STRINGS.clear()
        _ENCODED_STRINGS.update(encoded)
        return list(map(encoded.__getitem__, values))


_ENCODED_STRINGS: dict[str | None, bytes] = {}
_STRINGS_KEPT = 4096


def _optional_doubles(values: Sequence[float | None]) -> bytes:
    if not values:
        return b"\x00"
    try:  # union branch 1 (zig-zag 2) and the value, for every value at C speed
        if len(values) < _INTERLEAVE_FROM:
            packed: list[float | None] = [2, 0.0] * len(values)
            packed[1::2] = values
            items = struct.pack("<" + "Bd" * len(values), *packed)
        else:
            items = _branch_and_doubles(values)
    except struct.error:  # a None among them (no scan for one first: it costs as much)
        items = b"".join(b"\x00" if v is None else b"\x02" + _DOUBLE.pack(v) for v in values)
    return avro_long(len(values)) + items + b"\x00"


_INTERLEAVE_FROM = 256
"""From this many values a column is packed as doubles first and interleaved with the union
branches by byte planes (16 strided copies in C): half the cost of one 2n-item ``struct``
format over a batch of 1,000 (whose format string is built and parsed on every call)."""


def _branch_and_doubles(values: Sequence[float | None]) -> bytes:
    """``02`` and the little-endian double, for each value (none of them None)."""
    count = len(values)
    doubles = struct.pack(f"<{count}d", *values)
    out = bytearray(9 * count)
    out[0::9] = b"\x02" * count
    for byte in range(8):
        out[1 + byte :: 9] = doubles[byte::8]
    return bytes(out)


def _doubles(values: Sequence[float]) -> bytes:
    if not values:
        return b"\x00"
    return avro_long(len(values)) + struct.pack(f"<{len(values)}d", *values) + b"\x00"


# -- decoding ---------------------------------------------------------------------------------


def read_prediction_batch(
    data: bytes, offset: int, envelope_schema: dict[str, Any]
) -> dict[str, Any]:
    """The record fastavro would decode from ``data[offset:]`` (a PredictionBatch under the
    bundled schema): the envelope by fastavro, the columns here, a column of doubles without
    nulls unpacked by one ``struct`` call. Raises ``EOFError`` (the data ends inside the record)
    or ``ValueError`` (bytes that are no such record), as fastavro does."""
    buffer = BytesIO(data)
    buffer.seek(offset)
    envelope = schemaless_reader(buffer, envelope_schema, None)
    reader = _Reader(data, buffer.tell())
    record = {
        "envelope": envelope, "batch_id": reader.string(), "model_name": reader.string(),
        "model_version": reader.string(),
        "location": {"country": reader.string(), "provider": reader.optional_string(),
                     "region": reader.optional_string()},
        "count": reader.long(), "sample_rate": reader.double(),
        "subject_jurisdictions": reader.optional_strings(),
        "numeric_features": reader.array(
            lambda: {"name": reader.string(), "values": reader.optional_doubles()}
        ),
        "categorical_features": reader.array(
            lambda: {"name": reader.string(), "values": reader.optional_strings()}
        ),
        "scores": reader.doubles(), "labels": reader.array(reader.string),
        "latency_ms": reader.double(), "artifact_digest": reader.optional_string(),
    }  # fmt: skip
    if reader.pos != len(data):
        raise ValueError(f"{len(data) - reader.pos} bytes left after the record")
    return record


_VALUES = ("subject_jurisdictions", "scores", "labels")
_SUBJECTS: TypeAdapter[tuple[Jurisdiction | None, ...]] = TypeAdapter(
    tuple[Jurisdiction | None, ...]
)


def prediction_batch(record: dict[str, Any]) -> PredictionBatch:
    """The model of a record ``read_prediction_batch`` returned, its columns' values not
    validated one by one: pydantic checked each of a batch's ten thousand values again (170 µs
    of the ~250 a batch of 1,000 predictions of 8 features costs to decode).

    Every field but the columns' values is validated by the model (a copy of the record with
    empty columns, which also validates the columns' names); the values are what the reader
    built, the types the model declares (floats or None unpacked from doubles, strings
    decoded); the subjects' jurisdictions are checked as the model checks them, each distinct
    value once; and the columns must match ``count`` (the model's own check, run on the
    result). Raises ``ValueError`` (pydantic's ``ValidationError`` included) where validating
    the whole record would fail: the caller then validates it for the error's wording."""
    numeric, categorical = record["numeric_features"], record["categorical_features"]
    shell = PredictionBatch.model_validate({
        **record, **dict.fromkeys(_VALUES, ()),
        "numeric_features": [{"name": c["name"], "values": ()} for c in numeric],
        "categorical_features": [{"name": c["name"], "values": ()} for c in categorical],
    })  # fmt: skip
    _SUBJECTS.validate_python(tuple(set(record["subject_jurisdictions"])))
    batch = shell.model_copy(
        update={
            **{name: tuple(record[name]) for name in _VALUES},
            "numeric_features": tuple(
                column.model_copy(update={"values": tuple(raw["values"])})
                for column, raw in zip(shell.numeric_features, numeric, strict=True)
            ),
            "categorical_features": tuple(
                column.model_copy(update={"values": tuple(raw["values"])})
                for column, raw in zip(shell.categorical_features, categorical, strict=True)
            ),
        }
    )
    batch.check_columns()
    return batch


class _Reader(AvroReader):
    """The PredictionBatch fields' shapes over the Avro primitives."""

    def string(self) -> str:
        return self.take(self.long()).decode()

    def optional_string(self) -> str | None:
        branch = self.long()
        if branch == 0:
            return None
        if branch != 1:
            raise ValueError(f"union branch {branch} of a nullable string")
        return self.string()

    def double(self) -> float:
        value: float = _DOUBLE.unpack(self.take(8))[0]
        return value

    def blocks(self) -> Iterator[int]:
        """The item count of each block of an array (a negative count carries a byte size); a
        count beyond the bytes left is refused before anything is allocated for it."""
        while count := self.long():
            if count < 0:
                count = -count
                self.long()
            if self.pos + count > len(self.data):  # every item takes a byte at least
                raise EOFError("the data ends inside an array")
            yield count

    def array(self, item: Callable[[], Any]) -> list[Any]:
        return [item() for count in self.blocks() for _ in range(count)]

    def optional_strings(self) -> list[str | None]:
        """An array of nullable strings; short ones (the usual: jurisdictions, categories) read
        inline, each distinct value decoded once."""
        values: list[str | None] = []
        seen: dict[bytes, str] = {}
        data = self.data
        for count in self.blocks():
            if self._repeated(count, values):
                continue
            for _ in range(count):
                pos = self.pos
                if pos + 1 < len(data) and data[pos] == 2 and data[pos + 1] < 0x80:
                    start = pos + 2  # union branch 1, a one-byte length (zig-zag: even)
                    end = start + (data[pos + 1] >> 1)
                    if data[pos + 1] & 1:
                        raise ValueError("a string of negative length")
                    if end > len(data):
                        raise EOFError("the data ends inside a value")
                    raw = data[start:end]
                    value = seen.get(raw)
                    if value is None:
                        value = seen[raw] = raw.decode()
                    values.append(value)
                    self.pos = end
                else:
                    values.append(self.optional_string())
        return values

    def _repeated(self, count: int, values: list[str | None]) -> bool:
        """A block of ``count`` equal short strings (a batch's subjects in one jurisdiction, the
        usual case) read with one comparison: True once added to ``values``."""
        data, pos = self.data, self.pos
        if not (pos + 1 < len(data) and data[pos] == 2 and data[pos + 1] < 0x80):
            return False
        if data[pos + 1] & 1:
            return False  # a negative length: the item by item path says so
        size = 2 + (data[pos + 1] >> 1)
        if pos + size * count > len(data):  # not all equal (or cut): never built beyond the data
            return False
        item = data[pos : pos + size]
        if data[pos : pos + size * count] != item * count:
            return False
        values += [item[2:].decode()] * count
        self.pos = pos + size * count
        return True

    def optional_doubles(self) -> list[float | None]:
        values: list[float | None] = []
        for count in self.blocks():
            start, size = self.pos, 9 * count
            if start + count > len(self.data):  # each item takes a byte at least
                raise EOFError("the data ends inside an array")
            chunk = self.data[start : start + size]
            if len(chunk) == size and chunk[0::9] == b"\x02" * count:
                # no nulls: union index 1 and a double, count times; the doubles gathered by
                # byte planes (8 strided copies in C, the encoder's mirror image), one unpack
                doubles = bytearray(8 * count)
                for byte in range(8):
                    doubles[byte::8] = chunk[1 + byte :: 9]
                values += struct.unpack(f"<{count}d", doubles)
                self.pos = start + size
                continue
            for _ in range(count):
                branch = self.long()
                if branch not in (0, 1):
                    raise ValueError(f"union branch {branch} of a nullable double")
                values.append(self.double() if branch else None)
        return values

    def doubles(self) -> list[float]:
        values: list[float] = []
        for count in self.blocks():
            values += struct.unpack(f"<{count}d", self.take(8 * count))
        return values
