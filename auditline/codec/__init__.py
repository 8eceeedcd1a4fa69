"""Avro codec with two framings behind one interface.

- Confluent wire format through confluent-kafka's Schema Registry client, when a registry URL
  is configured;
- Avro single-object encoding (CRC-64-AVRO fingerprint) resolved against the bundled schemas
  otherwise.

Decoding returns the event model or raises a ``DecodeError`` subclass naming what was wrong.
Both framings read a body in the current contracts layout with the trusted decode
(``auditline.codec.trusted``: the models built straight from the Avro body, checked as the
models check them) and every other body, or one it fails on, with fastavro and the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from auditline.catalogue import Catalogue
from auditline.codec.confluent import ConfluentCodec, registry_client
from auditline.codec.single_object import SingleObjectCodec
from auditline.events import Event
from auditline.settings import AuditlineSettings


class Codec(Protocol):
    """What a framing must provide: bytes for an event, and the event back (or a DecodeError)."""

    framing: str

    def header(self, model: type[Event]) -> bytes:
        """The framing header every message of ``model`` starts with."""
        ...

    def encode(self, event: Event) -> bytes:
        """Serialise ``event`` with its catalogued schema."""
        ...

    def decode(self, data: bytes) -> Event:
        """Deserialise, or raise a ``DecodeError`` subclass naming what was wrong."""
        ...

    def prepare(self, models: Iterable[type[Event]]) -> None:
        """Make ready in advance what decoding these kinds needs (a worker does it before it
        says it is ready, so its first records do not pay for it)."""
        ...

    def decode_with_body(self, data: bytes) -> tuple[Event, bytes | None]:
        """``decode``, and the Avro body when it was written with the bundled schema (the bytes
        the hash chain covers, see ``auditline.integrity.chain.canonical_from_body``), else None."""
        ...


def make_codec(settings: AuditlineSettings, catalogue: Catalogue | None = None) -> Codec:
    """The codec the settings ask for: Confluent framing with a registry URL, else single-object."""
    catalogue = catalogue or Catalogue(settings.topic_prefix)
    limit = settings.max_message_bytes
    registry = settings.schema_registry
    if registry.url:
        client = registry_client(registry.url, registry.client_conf())
        return ConfluentCodec(catalogue, client, max_message_bytes=limit)
    return SingleObjectCodec(catalogue, max_message_bytes=limit)


__all__ = ["Codec", "ConfluentCodec", "SingleObjectCodec", "make_codec"]
