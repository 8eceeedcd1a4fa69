"""Avro body encoding shared by both framings: event model ⇄ schemaless Avro bytes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from pydantic import ValidationError

from auditline.codec.columns import prediction_batch, read_prediction_batch
from auditline.contracts import bundled_schema
from auditline.errors import InvalidEventError, SchemaMismatchError, TruncatedMessageError
from auditline.events import Event, PredictionBatch


def to_record(event: Event) -> dict[str, Any]:
    """The event as the plain mapping fastavro writes (enums are str, tuples are sequences)."""
    return event.model_dump()


def write_body(buffer: BytesIO, parsed_schema: dict[str, Any], event: Event) -> None:
    try:
        schemaless_writer(buffer, parsed_schema, to_record(event))
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidEventError(
            f"{type(event).__name__} does not fit schema {parsed_schema.get('name')}: {exc}"
        ) from exc


def read_record(
    data: bytes | memoryview,
    offset: int,
    writer: dict[str, Any],
    reader: dict[str, Any] | None,
) -> dict[str, Any]:
    """Decode one record from ``data[offset:]``; the whole remainder must be that record."""
    buffer = BytesIO(data)
    buffer.seek(offset)
    with _decoding(writer.get("name"), len(data)):
        record = schemaless_reader(buffer, writer, reader)
    trailing = len(data) - buffer.tell()
    if trailing:
        raise SchemaMismatchError(
            f"{trailing} bytes left after the {writer.get('name')} body: "
            "the message was written with a different schema than its header names"
        )
    if not isinstance(record, dict):
        raise SchemaMismatchError(f"decoded a {type(record).__name__}, expected a record")
    return record


def read_prediction_batch_record(data: bytes, offset: int) -> dict[str, Any]:
    """A PredictionBatch under the bundled schema, its columns read by ``codec.columns``."""
    with _decoding(PredictionBatch.SCHEMA, len(data)):
        record = read_prediction_batch(data, offset, _envelope_schema())
    return record


def read_trusted_prediction_batch(data: bytes, offset: int) -> PredictionBatch:
    """A PredictionBatch under the bundled schema, its columns read by ``codec.columns`` and
    built into the model without validating each value (``columns.prediction_batch``; raises
    where validation would: the caller then reads it again through the model for the error)."""
    return prediction_batch(read_prediction_batch_record(data, offset))


@contextmanager
def _decoding(name: object, size: int) -> Iterator[None]:
    """A reader's failure as the decode error a consumer dead-letters, naming the schema."""
    try:
        yield
    except EOFError as exc:
        raise TruncatedMessageError(
            f"message ends inside its {name} body ({size} bytes in all)"
        ) from exc
    except Exception as exc:
        raise SchemaMismatchError(
            f"bytes do not decode as {name}: {type(exc).__name__}: {exc}"
        ) from exc


@cache
def _envelope_schema() -> dict[str, Any]:
    return bundled_schema("auditline.events.Envelope").parsed


def to_event(model: type[Event], record: dict[str, Any]) -> Event:
    """Validate a decoded record into its model; an invalid one names its first bad field."""
    try:
        return model.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise SchemaMismatchError(
            f"decoded {model.__name__} is invalid at {path}: {first['msg']}"
        ) from exc
