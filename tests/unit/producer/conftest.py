from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings

KEY_HEX = "11" * 32


@pytest.fixture
def broker() -> InProcessBroker:
    return InProcessBroker()


@pytest.fixture
def make_producer(
    tmp_path: Path, broker: InProcessBroker
) -> Iterator[Callable[..., AuditProducer]]:
    made: list[AuditProducer] = []

    def make(queue_limit: int = 100_000, **spool: object) -> AuditProducer:
        settings = AuditlineSettings(
            producer={"service": "billing", "instance": "pod-1", "country": "DE",
                      "transport": "memory", "signing_key": KEY_HEX, "signing_key_id": "k1"},
            spool={"path": str(tmp_path / "spool"), "fsync": "never", **spool},
        )  # fmt: skip
        producer = AuditProducer(settings, transport=InProcessTransport(broker, queue_limit))
        made.append(producer)
        return producer

    yield make
    for producer in made:
        if not producer._stop.is_set():
            producer.close(timeout=1)
