"""RawSchema: faust's events of the worker's topics carry the record's own bytes."""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP
from faust.types.tuples import Message

from streams.rawschema import RawSchema


def test_the_event_carries_the_records_key_value_and_headers_as_they_are() -> None:
    app = faust.App("rawschema-test", broker="kafka://localhost:1")
    message = Message(
        topic="t", partition=3, offset=7, timestamp=0.0, timestamp_type=0,
        headers=[("h", b"v")], key=b"\x00k", value=b"\xc3\x01body", checksum=None,
        tp=TP("t", 3),
    )  # fmt: skip
    decode = RawSchema().compile(app)
    event = asyncio.run(decode(message))
    assert (event.key, event.value, event.message) == (b"\x00k", b"\xc3\x01body", message)
    assert dict(event.headers) == {"h": b"v"}


def test_a_topic_with_the_schema_sends_bytes_unchanged() -> None:
    app = faust.App("rawschema-test", broker="kafka://localhost:1")
    topic = app.topic("t", schema=RawSchema())
    assert topic.prepare_key(b"\x01", None) == (b"\x01", None)
    assert topic.prepare_value(b"\xc3\x01", None) == (b"\xc3\x01", None)
