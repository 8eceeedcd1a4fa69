"""The sink's decode: Kafka messages → the items the writer stores (pure: no I/O).

Every message is decoded by the codec: its trusted decode (``auditline.codec.trusted``) builds
the event models straight from the Avro body, checked as the models check them, and reads any
other body (earlier layouts, kinds with validators of their own, bytes that fail) with fastavro
and the model, whose ``DecodeError`` is the dead-letter reason. The row mapping (``rows``) reads
the models, and the audit log's payload is the model's JSON (``model_dump_json``'s bytes).
"""

from __future__ import annotations

from typing import Protocol

from auditline.codec import Codec

from .rows import Item, Located


class Decoder(Protocol):
    """Messages → items for the writer; a ``DecodeError`` for what is no event."""

    def item(self, data: bytes, topic: str, partition: int, offset: int) -> Item: ...


class ModelDecoder:
    """Every event through the codec's ``decode`` (its trusted decode where it has one)."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def item(self, data: bytes, topic: str, partition: int, offset: int) -> Item:
        return Located(self.codec.decode(data), topic, partition, offset)


def decoder_for(codec: Codec) -> Decoder:
    """The sink's decoder for a codec (either framing)."""
    return ModelDecoder(codec)
