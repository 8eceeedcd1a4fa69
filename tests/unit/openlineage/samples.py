"""The integrations' fixture events and what an in-process broker received."""

from __future__ import annotations

import json
from pathlib import Path

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import Event
from auditline.producer.memory import InProcessBroker

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "openlineage"


def fixture(path: str) -> list[bytes]:
    """The events of one fixture file, each as the bytes a transport sends."""
    return [json.dumps(e).encode() for e in json.loads((FIXTURES / path).read_text())]


def every_fixture() -> list[bytes]:
    return [
        raw
        for path in sorted(FIXTURES.rglob("*.json"))
        for raw in fixture(str(path.relative_to(FIXTURES)))
    ]


def events(broker: InProcessBroker) -> list[Event]:
    codec = SingleObjectCodec(Catalogue())
    return [codec.decode(m.value) for messages in broker.topics.values() for m in messages]
