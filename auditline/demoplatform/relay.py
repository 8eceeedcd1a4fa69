"""A compromised relay between a team's producer and the broker: it rewrites one event in transit.

``Relay`` is a transport (``auditline.producer.transport``) around the real one, in-process or
Kafka alike. Armed with field changes for a topic, it decodes the next message bound for that
topic, applies the changes and encodes it again, keeping the envelope the producer sealed (its
hash and signature); everything else passes through untouched. Nothing downstream is told: the
chain verifier (the embedded runner's, or the worker's) is what notices.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from auditline.codec import Codec
from auditline.producer.transport import DeliveryReport, OutboundMessage, Transport


@dataclasses.dataclass(frozen=True)
class Rewritten:
    """Which message the relay changed: its producer stream and sequence."""

    stream: str
    sequence: int


class Relay:
    def __init__(self, inner: Transport, codec: Codec) -> None:
        self.inner = inner
        self.codec = codec
        self.rewritten: Rewritten | None = None
        self._armed: tuple[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def arm(self, topic: str, changes: Mapping[str, Any]) -> None:
        """Rewrite the next message bound for ``topic`` with ``changes`` (event fields)."""
        with self._lock:
            self._armed = (topic, dict(changes))

    def produce(self, message: OutboundMessage, token: int) -> None:
        with self._lock:
            armed = self._armed
            if armed is None or armed[0] != message.topic:
                self.inner.produce(message, token)
                return
            # QueueFull: the producer sends the message again later, the relay stays armed
            self.inner.produce(self._rewrite(message, armed[1]), token)
            self._armed = None
            self.rewritten = Rewritten(message.stream, message.sequence)

    def _rewrite(self, message: OutboundMessage, changes: dict[str, Any]) -> OutboundMessage:
        forged = self.codec.decode(message.value).model_copy(update=changes)
        return dataclasses.replace(message, value=self.codec.encode(forged))

    def poll(self, timeout: float) -> list[DeliveryReport]:
        return self.inner.poll(timeout)

    def flush(self, timeout: float) -> int:
        return self.inner.flush(timeout)

    def delivered(self, topic: str, stream: str, since_ms: int) -> set[int]:
        return self.inner.delivered(topic, stream, since_ms)

    def close(self) -> None:
        self.inner.close()
