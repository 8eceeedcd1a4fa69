from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from auditline.openlineage.ingest import Ingestor
from auditline.openlineage.locations import load_inventory
from auditline.openlineage.mapping import MappingConfig
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings
from tests.unit.openlineage.samples import FIXTURES


@pytest.fixture
def broker() -> InProcessBroker:
    return InProcessBroker()


@pytest.fixture
def ingestor(broker: InProcessBroker, tmp_path: Path) -> Iterator[Ingestor]:
    """The ingest core over an in-process broker, datasets placed by the fixture inventory."""
    settings = AuditlineSettings(
        producer={"service": "auditline-openlineage", "instance": "i1"},
        spool={"path": str(tmp_path / "spool"), "fsync": "never"},
    )
    config = MappingConfig(inventory=load_inventory(FIXTURES / "inventory.yaml"))
    with AuditProducer(settings, transport=InProcessTransport(broker)) as producer:
        yield Ingestor(producer, config)
