"""The transport seam: how sealed events leave the process.

An implementation must provide:

- ``produce(message, token)``: queue one message without blocking; raise ``QueueFull`` when its
  local queue has no room (the caller keeps the message spooled and retries later). Messages
  with the same key must be delivered in ``produce`` order.
- ``poll(timeout) -> list[(token, reason)]``: delivery reports since the last poll, waiting up
  to ``timeout`` for the first: ``reason`` is None once the message is durably stored, else why
  it never will be (the caller resends from its spool). Reports are batched so that the caller
  handles them with one lock, not one Python callback per message.
- ``flush(timeout) -> int``: wait for outstanding messages; return how many are still pending
  (their reports are returned by the next ``poll``).
- ``delivered(topic, stream, since_ms) -> set[int]``: sequences of ``stream`` already stored
  on ``topic`` with a timestamp at or after ``since_ms`` (used after a crash to resend only
  what never arrived, so that nothing is stored twice).
- ``close()``.

Implementations: ``kafka`` (confluent-kafka, the real thing) and ``memory`` (in-process, for the
embedded default and unit tests). ``make_transport`` picks one by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from auditline.errors import ConfigError
from auditline.settings import AuditlineSettings

STREAM_HEADER = "auditline-stream"
SEQUENCE_HEADER = "auditline-seq"

DeliveryReport = tuple[int, str | None]


class QueueFull(Exception):
    """The transport's local queue is full; try again after ``poll`` (never reaches users)."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    topic: str
    key: bytes
    value: bytes
    stream: str
    sequence: int
    timestamp_ms: int

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return [(STREAM_HEADER, self.stream.encode()), (SEQUENCE_HEADER, b"%d" % self.sequence)]


class Transport(Protocol):
    def produce(self, message: OutboundMessage, token: int) -> None: ...

    def poll(self, timeout: float) -> list[DeliveryReport]: ...

    def flush(self, timeout: float) -> int: ...

    def delivered(self, topic: str, stream: str, since_ms: int) -> set[int]: ...

    def close(self) -> None: ...


def make_transport(settings: AuditlineSettings) -> Transport:
    """The transport named by ``AUDITLINE_PRODUCER__TRANSPORT``."""
    name = settings.producer.transport
    if name == "kafka":
        from auditline.producer.kafka import KafkaTransport

        return KafkaTransport(settings.kafka.client_conf())
    if name == "memory":
        from auditline.producer.memory import InProcessBroker, InProcessTransport

        return InProcessTransport(InProcessBroker.shared())
    raise ConfigError(f"unknown transport {name!r}: use 'kafka' or 'memory'")
