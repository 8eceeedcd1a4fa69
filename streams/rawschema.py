"""The schema of the worker's topics: records reach the agents as the bytes Kafka carries.

Every topic the worker reads carries bytes it decodes itself (auditline's codec for events,
JSON for its internal topics), so faust's per-record decode is the identity. faust still runs
it through its serializer registry: the key and then the value each go through
``Registry.loads_key``/``loads_value``, a codec lookup and the ``raw`` codec, about 8 µs of a
worker's CPU per record (py-spy, ``bench/streams.py``). ``RawSchema`` is a ``faust.Schema``, the
extension point faust documents for custom decoding (``app.topic(..., schema=...)``): its
compiled decode builds the event from the message's own key and value, as the registry's
``raw`` codec would return them.
"""

from __future__ import annotations

from typing import Any

import faust


class RawSchema(faust.Schema[bytes, bytes]):
    """Key and value as the record's bytes (``raw`` serializers), decoded without the registry."""

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(
        self,
        app: Any,
        *,
        on_key_decode_error: Any = None,
        on_value_decode_error: Any = None,
        default_propagate: bool = False,
    ) -> Any:
        """The decode faust calls per record (no decode error is possible on raw bytes)."""
        create_event = app.create_event

        async def decode(message: Any, *, propagate: bool = default_propagate) -> Any:
            return create_event(message.key, message.value, message.headers, message)

        return decode
