"""In-process transport: a tiny in-memory topic log with Kafka's delivery-report semantics.

For the embedded default (demo, ``auditline check``) and unit tests. Reports are served by
``poll``, as with librdkafka. ``available = False`` simulates an unreachable broker: messages
wait in a bounded local queue (``QueueFull`` past it) until it is available again.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from auditline.producer.transport import DeliveryReport, OutboundMessage, QueueFull


@dataclass(frozen=True, slots=True)
class StoredMessage:
    offset: int
    key: bytes
    value: bytes
    stream: str
    sequence: int
    timestamp_ms: int


@dataclass
class InProcessBroker:
    """Topics as append-only lists (one partition each: order is total)."""

    topics: dict[str, list[StoredMessage]] = field(default_factory=dict)
    available: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _shared: ClassVar[InProcessBroker | None] = None

    @classmethod
    def shared(cls) -> InProcessBroker:
        """The process-wide broker the ``memory`` transport setting uses."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def store(self, message: OutboundMessage) -> None:
        with self.lock:
            log = self.topics.setdefault(message.topic, [])
            log.append(
                StoredMessage(len(log), message.key, message.value, message.stream,
                              message.sequence, message.timestamp_ms)
            )  # fmt: skip

    def read(self, topic: str, offset: int = 0) -> list[StoredMessage]:
        with self.lock:
            return list(self.topics.get(topic, [])[offset:])


class InProcessTransport:
    def __init__(self, broker: InProcessBroker, queue_limit: int = 100_000) -> None:
        self.broker = broker
        self.queue_limit = queue_limit
        self._queue: deque[tuple[OutboundMessage, int]] = deque()
        self._reports: list[DeliveryReport] = []
        self._lock = threading.Condition()

    def produce(self, message: OutboundMessage, token: int) -> None:
        with self._lock:
            if len(self._queue) >= self.queue_limit:
                raise QueueFull(f"{len(self._queue)} messages waiting for the broker")
            self._queue.append((message, token))
            if len(self._queue) == 1:
                self._lock.notify()

    def poll(self, timeout: float) -> list[DeliveryReport]:
        """Deliver what is queued; like librdkafka, wait up to ``timeout`` when nothing is."""
        with self._lock:
            if not (self._queue and self.broker.available) and not self._reports:
                self._lock.wait(timeout)
            self._deliver()
            reports, self._reports = self._reports, []
        return reports

    def _deliver(self) -> None:
        while self.broker.available and self._queue:
            message, token = self._queue.popleft()
            self.broker.store(message)
            self._reports.append((token, None))

    def flush(self, timeout: float) -> int:
        with self._lock:
            self._deliver()
            return len(self._queue)

    def delivered(self, topic: str, stream: str, since_ms: int) -> set[int]:
        return {
            m.sequence
            for m in self.broker.read(topic)
            if m.stream == stream and m.timestamp_ms >= since_ms
        }

    def close(self) -> None:
        self.flush(0)
