"""A worker stopped with SIGTERM closes its alert producer: its alert stream ends on a final
signed checkpoint naming its last alert, so a later ``auditline verify`` reads the stream as
ended, not silenced."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import StreamCheckpoint
from auditline.producer import AuditProducer
from tests.integration.test_worker import emit_pinned_copy, platform_settings, violations, worker
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.worker]


def test_a_stopped_worker_ends_its_alert_streams_on_a_final_checkpoint(
    kafka_bootstrap: str, tmp_path: Path, unique: str
) -> None:
    prefix = f"t{unique}.auditline"
    with AuditProducer(platform_settings(kafka_bootstrap, prefix, tmp_path)) as audit:
        emit_pinned_copy(audit)
        assert audit.flush(30)
    process = worker(kafka_bootstrap, prefix, tmp_path)
    try:
        found = violations(kafka_bootstrap, prefix, 2)
        assert len(found) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    catalogue = Catalogue(prefix)
    codec = SingleObjectCodec(catalogue)
    topic = catalogue.for_model(StreamCheckpoint).topic
    checkpoints = [codec.decode(m.value) for m in read_topic(kafka_bootstrap, topic, 1)]
    own = [
        c for c in checkpoints
        if isinstance(c, StreamCheckpoint) and c.envelope.producer.service == "auditline-streams"
    ]  # fmt: skip
    assert own and own[-1].final, [c.model_dump(mode="json") for c in own]
    last = max(found, key=lambda v: v.envelope.sequence).envelope
    heads = {h.stream: (h.sequence, h.hash) for h in own[-1].heads}
    assert heads[last.stream] == (last.sequence, last.hash)
