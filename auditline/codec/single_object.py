"""Avro single-object encoding: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + body.

Used when no Schema Registry is configured; the fingerprint is resolved against the schemas
bundled in the wheel (see ``auditline.catalogue``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from io import BytesIO

from auditline.catalogue import Catalogue, CatalogueEntry
from auditline.codec.body import (
    read_prediction_batch_record,
    read_record,
    read_trusted_prediction_batch,
    to_event,
    write_body,
)
from auditline.codec.trusted import Reader, trusted_reader
from auditline.contracts import AvroSchema
from auditline.errors import DecodeError, TruncatedMessageError
from auditline.events import Event, PredictionBatch

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class SingleObjectCodec:
    """Encodes events with the single-object header; decodes by fingerprint."""

    framing = "single-object"

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        trusted: bool = True,
    ) -> None:
        """``trusted=False``: every body read with fastavro and the model (the reference the
        trusted decode is tested against)."""
        self.catalogue = catalogue
        self.max_message_bytes = max_message_bytes
        self.trusted = trusted
        self._trusted: dict[bytes, Reader | None] = {}

    def header(self, model: type[Event]) -> bytes:
        return MAGIC + self.catalogue.for_model(model).schema.fingerprint

    def encode(self, event: Event) -> bytes:
        """In the contracts layout the event's ``schema_version`` names (see ``contracts``)."""
        schema = self.catalogue.for_model(type(event)).schema_in(event.envelope.schema_version)
        buffer = BytesIO()
        buffer.write(MAGIC)
        buffer.write(schema.fingerprint)
        write_body(buffer, schema.parsed, event)
        return buffer.getvalue()

    def decode(self, data: bytes) -> Event:
        return self.decode_with_body(data)[0]

    def prepare(self, models: Iterable[type[Event]]) -> None:
        """Compile the trusted readers of these kinds' current schemas now rather than at their
        first message."""
        for model in models:
            entry = self.catalogue.for_model(model)
            header = MAGIC + entry.schema.fingerprint
            if header not in self._trusted:
                self._trusted[header] = self._trusted_reader(entry, entry.schema)

    def decode_with_body(self, data: bytes) -> tuple[Event, bytes | None]:
        """The event and its body (a fingerprint names a bundled schema, so always the body).

        A body in the current contracts layout of a kind ``codec.trusted`` reads is read by its
        compiled reader; one in an earlier layout is read with Avro schema resolution (its
        ``schema_version`` says which layout the chain hash covers); every other body, and one
        the trusted reader fails on, with fastavro and the model, whose error names the fault."""
        if type(data) is bytes and len(data) <= self.max_message_bytes:
            read = self._trusted.get(data[:HEADER_SIZE])  # by header: marker and fingerprint
            if read is not None:
                try:
                    return read(data, HEADER_SIZE), data[HEADER_SIZE:]
                except Exception:  # noqa: BLE001 (read below: its error is the reason)
                    pass
        fingerprint = self._fingerprint(data)
        entry, writer = self.catalogue.for_fingerprint(fingerprint)
        header = MAGIC + fingerprint
        if header not in self._trusted:  # its first message: the reader tried now
            read = self._trusted_reader(entry, writer)
            self._trusted[header] = read
            if read is not None and type(data) is bytes:
                with contextlib.suppress(Exception):
                    return read(data, HEADER_SIZE), data[HEADER_SIZE:]
        if writer is not entry.schema:  # an earlier layout
            record = read_record(data, HEADER_SIZE, writer.parsed, entry.schema.parsed)
        elif entry.model is PredictionBatch:  # its columns read by hand
            record = read_prediction_batch_record(bytes(data), HEADER_SIZE)
        else:
            record = read_record(data, HEADER_SIZE, writer.parsed, None)
        return to_event(entry.model, record), data[HEADER_SIZE:]

    def _fingerprint(self, data: bytes) -> bytes:
        """The header's fingerprint, or the ``DecodeError`` of a message that has none."""
        check_size(data, self.max_message_bytes)
        if len(data) < HEADER_SIZE:
            raise TruncatedMessageError(
                f"message has {len(data)} bytes, shorter than the {HEADER_SIZE}-byte "
                "single-object header"
            )
        if data[:2] != MAGIC:
            raise DecodeError(
                f"message starts with {data[:2].hex()}, not the single-object marker c301: "
                "it was not written by auditline's single-object framing"
            )
        return bytes(data[2:HEADER_SIZE])

    def _trusted_reader(self, entry: CatalogueEntry, writer: AvroSchema) -> Reader | None:
        """The trusted reader of a bundled schema in the current layout (None: read by the
        model, as every body in an earlier layout)."""
        if not self.trusted or writer is not entry.schema:
            return None
        if entry.model is PredictionBatch:  # columns read by hand, values not validated one by one
            return read_trusted_prediction_batch
        return trusted_reader(entry.model, writer.parsed)


def check_size(data: bytes, limit: int) -> None:
    if len(data) > limit:
        raise DecodeError(f"message of {len(data)} bytes exceeds the {limit}-byte limit")
