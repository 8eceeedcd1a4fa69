"""Confluent wire format: ``00`` + 4-byte big-endian schema id + body, ids from a Schema Registry.

Subjects follow the TopicRecordNameStrategy (``<topic>-<record full name>``) because one topic
(predictions) carries two record types. Each schema is registered once per process and its id
cached; writer schemas met while decoding are fetched once per id and resolved against the
bundled (reader) schema, so data written with an older or newer compatible version decodes.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Iterable
from io import BytesIO
from typing import Any

from auditline.catalogue import Catalogue, CatalogueEntry
from auditline.codec.body import read_record, to_event, write_body
from auditline.codec.single_object import DEFAULT_MAX_MESSAGE_BYTES, check_size
from auditline.codec.trusted import Reader, trusted_reader
from auditline.contracts import CONTRACTS_VERSION, LAYOUTS, AvroSchema
from auditline.errors import (
    ConfigError,
    DecodeError,
    SchemaError,
    TruncatedMessageError,
    UnknownSchemaError,
)
from auditline.events import Event

MAGIC = b"\x00"
HEADER_SIZE = 5


def registry_client(url: str, conf: dict[str, str] | None = None) -> Any:
    """A confluent-kafka Schema Registry client (``mock://`` gives its in-memory registry)."""
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient
    except ImportError as exc:
        raise ConfigError(
            "a schema registry URL is configured but the client is missing: "
            "pip install 'auditline[registry]'"
        ) from exc
    return SchemaRegistryClient.new_client({"url": url, **(conf or {})})


class ConfluentCodec:
    """Encodes with registry ids; decodes any id the registry knows for a catalogued record."""

    framing = "confluent"

    def __init__(
        self,
        catalogue: Catalogue,
        client: Any,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        trusted: bool = True,
    ) -> None:
        """``trusted=False``: every body read with fastavro and the model (the reference the
        trusted decode is tested against)."""
        self.catalogue = catalogue
        self.client = client
        self.max_message_bytes = max_message_bytes
        self.trusted = trusted
        self._ids: dict[type[Event], bytes] = {}
        self._writers: dict[int, tuple[CatalogueEntry, dict[str, Any], int]] = {}
        self._trusted: dict[bytes, Reader | None] = {}

    def header(self, model: type[Event]) -> bytes:
        return self._ids.get(model) or self._register(self.catalogue.for_model(model))

    def encode(self, event: Event) -> bytes:
        """In the contracts layout the event's ``schema_version`` names (see ``contracts``)."""
        entry = self.catalogue.for_model(type(event))
        version = event.envelope.schema_version
        if version == CONTRACTS_VERSION:
            header = self._ids.get(entry.model) or self._register(entry)
        else:
            header = self._register(entry, version)
        buffer = BytesIO()
        buffer.write(header)
        write_body(buffer, entry.schema_in(version).parsed, event)
        return buffer.getvalue()

    def decode(self, data: bytes) -> Event:
        return self.decode_with_body(data)[0]

    def prepare(self, models: Iterable[type[Event]]) -> None:
        """Nothing: the writers' schema ids are the registry's, learnt at their first message."""

    def decode_with_body(self, data: bytes) -> tuple[Event, bytes | None]:
        """The event, and its body when the writer schema is a bundled one (in any layout).

        A body written with the bundled schema of the current layout, of a kind
        ``codec.trusted`` reads, is read by the reader compiled from the writer schema; every
        other body, and one that reader fails on, with fastavro and the model."""
        if type(data) is bytes and len(data) <= self.max_message_bytes:
            read = self._trusted.get(data[:HEADER_SIZE])  # by header: magic byte and schema id
            if read is not None:
                try:
                    return read(data, HEADER_SIZE), data[HEADER_SIZE:]
                except Exception:  # noqa: BLE001 (read below: its error is the reason)
                    pass
        check_size(data, self.max_message_bytes)
        if len(data) < HEADER_SIZE:
            raise TruncatedMessageError(
                f"message has {len(data)} bytes, shorter than the 5-byte Confluent header"
            )
        if data[:1] != MAGIC:
            raise DecodeError(
                f"message starts with {data[:1].hex()}, not the Confluent magic byte 00"
            )
        (schema_id,) = struct.unpack(">I", data[1:HEADER_SIZE])
        entry, writer, layout = self._writers.get(schema_id) or self._fetch(schema_id)
        header = bytes(data[:HEADER_SIZE])
        if header not in self._trusted:  # its first message: the reader tried now
            current = self.trusted and layout == CONTRACTS_VERSION
            read = trusted_reader(entry.model, writer) if current else None
            self._trusted[header] = read
            if read is not None and type(data) is bytes:
                with contextlib.suppress(Exception):
                    return read(data, HEADER_SIZE), data[HEADER_SIZE:]
        reader = None if layout == CONTRACTS_VERSION else entry.schema.parsed
        record = read_record(data, HEADER_SIZE, writer, reader)
        return to_event(entry.model, record), data[HEADER_SIZE:] if layout else None

    def _register(self, entry: CatalogueEntry, version: int = CONTRACTS_VERSION) -> bytes:
        from confluent_kafka.schema_registry import Schema

        subject = f"{entry.topic}-{entry.schema.name}"
        schema = entry.schema_in(version)
        try:
            schema_id = self.client.register_schema(subject, Schema(schema.json, "AVRO"))
        except Exception as exc:
            raise ConfigError(
                f"could not register {entry.schema.name} under subject {subject}: {exc}; "
                "check the registry URL, credentials and the subject's compatibility level"
            ) from exc
        header = MAGIC + struct.pack(">I", schema_id)
        if version == CONTRACTS_VERSION:
            self._ids[entry.model] = header
        return header

    def _fetch(self, schema_id: int) -> tuple[CatalogueEntry, dict[str, Any], int]:
        """The entry, the writer schema and its bundled layout (0: another schema)."""
        try:
            definition = json.loads(self.client.get_schema(schema_id).schema_str)
        except Exception as exc:
            raise UnknownSchemaError(
                f"schema id {schema_id} could not be fetched from the registry: {exc}"
            ) from exc
        name = f"{definition.get('namespace', '')}.{definition.get('name', '')}".lstrip(".")
        entry = self.catalogue.for_name(name)
        try:
            writer = AvroSchema.from_definition(name, definition)
        except SchemaError as exc:
            raise UnknownSchemaError(f"registry schema id {schema_id} is unusable: {exc}") from exc
        layout = next((v for v in LAYOUTS if entry.schema_in(v).canonical == writer.canonical), 0)
        resolved = (entry, writer.parsed, layout)
        self._writers[schema_id] = resolved
        return resolved
