"""AuditProducer on the in-process transport: sealing, validation, spool, recovery."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import FRANKFURT, VIRGINIA, demo_events
from auditline.errors import InvalidEventError
from auditline.events import AssetDeclared, DataMovement, Event, Prediction, TrainingRun
from auditline.integrity.chain import compute_hash
from auditline.integrity.verify import ChainVerifier
from auditline.producer import AuditProducer, SpoolFullError
from auditline.producer.memory import InProcessBroker

CODEC = SingleObjectCodec(Catalogue())
KEYS = {"k1": bytes.fromhex("11" * 32)}


def body(index: int) -> dict[str, Any]:
    return demo_events()[index].model_dump(exclude={"envelope"})


def stored(broker: InProcessBroker, suffix: str) -> list[Event]:
    return [CODEC.decode(m.value) for m in broker.read(f"auditline.{suffix}")]


def assert_intact(events: list[Event]) -> None:
    verifier = ChainVerifier({}, KEYS, require_signature=True)
    problems = [f for e in events for f in verifier.observe(e)]
    assert problems == []


def test_emit_seals_signs_and_delivers(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    receipts = [producer.emit(Prediction, **body(5)) for _ in range(50)]
    assert producer.flush(5)
    events = stored(broker, "predictions")
    assert [e.envelope.sequence for e in events] == list(range(50))
    assert [r.hash for r in receipts] == [e.envelope.hash for e in events]
    assert all(compute_hash(e) == e.envelope.hash for e in events)
    assert events[0].envelope.producer.service == "billing"
    assert events[0].envelope.stream == "billing/pod-1/predictions"
    assert_intact(events)


def test_each_topic_is_its_own_stream(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    producer.emit(AssetDeclared, **body(0))
    producer.emit(DataMovement, **body(1))
    producer.emit(AssetDeclared, **body(0))
    assert producer.flush(5)
    assert [e.envelope.sequence for e in stored(broker, "assets")] == [0, 1]
    assert [e.envelope.sequence for e in stored(broker, "movements")] == [0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"asset_id": None}, "asset_id"),
        ({"records": "many"}, "records"),
        ({"classification": "top-secret"}, "classification"),
        ({"destination": {"country": "usa"}}, "destination.country"),
        ({"event_time": datetime(2026, 1, 1)}, "envelope.event_time"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_calls_raise_naming_the_field_and_send_nothing(
    make_producer: Callable[..., AuditProducer],
    broker: InProcessBroker,
    change: dict[str, Any],
    field: str,
) -> None:
    producer = make_producer()
    with pytest.raises(InvalidEventError) as info:
        producer.emit(DataMovement, **{**body(1), **change})
    assert info.value.field == field
    assert field in str(info.value)
    missing = {k: v for k, v in body(1).items() if k != "purpose"}
    with pytest.raises(InvalidEventError, match="purpose"):
        producer.emit(DataMovement, **missing)
    assert producer.stats.emitted == 0 and producer.spool.next_index == 0
    producer.emit(DataMovement, **body(1))  # the stream starts at 0: nothing was consumed
    assert producer.flush(5)
    assert [e.envelope.sequence for e in stored(broker, "movements")] == [0]


def test_outage_goes_through_the_spool_and_drains_in_order(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer(queue_limit=10)
    broker.available = False
    for _ in range(500):
        producer.emit(Prediction, **body(5))
    assert producer.pending == 500
    assert producer.stats.sent_directly <= 10
    broker.available = True
    assert producer.flush(10)
    events = stored(broker, "predictions")
    assert [e.envelope.sequence for e in events] == list(range(500))
    assert producer.stats.sent_from_backlog >= 490
    assert_intact(events)


def test_full_spool_raises_a_typed_error_and_loses_nothing_accepted(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer(queue_limit=5, max_bytes=40_000, segment_bytes=4_000, on_full="raise")
    broker.available = False
    accepted = 0
    with pytest.raises(SpoolFullError):
        for _ in range(1000):
            producer.emit(Prediction, **body(5))
            accepted += 1
    assert 10 < accepted < 1000
    broker.available = True
    assert producer.flush(10)
    assert [e.envelope.sequence for e in stored(broker, "predictions")] == list(range(accepted))


def test_restart_resumes_sequence_and_chain(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    first = make_producer()
    for _ in range(10):
        first.emit(Prediction, **body(5))
    assert first.close(5)
    second = make_producer()
    for _ in range(10):
        second.emit(Prediction, **body(5))
    assert second.flush(5)
    events = stored(broker, "predictions")
    assert [e.envelope.sequence for e in events] == list(range(20))
    assert_intact(events)


def test_crash_with_spooled_events_resends_only_what_never_arrived(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    crashed = make_producer(queue_limit=1000)
    for _ in range(30):
        crashed.emit(Prediction, **body(5))
    assert crashed.flush(5)
    broker.available = False
    for _ in range(30):
        crashed.emit(Prediction, **body(5))
    # "crash": some messages reached the broker without their delivery report being acked
    in_flight = list(crashed.transport._queue)[:12]  # type: ignore[attr-defined]
    for message, _ in in_flight:
        broker.store(message)
    crashed._stop.set()  # the process dies: no flush, no close, spool left as it is
    crashed._pump.join(2)
    os.close(crashed.spool._lock_fd)  # and the OS drops its lock on the spool folder
    broker.available = True

    restarted = make_producer()
    assert restarted.flush(5)
    # the acked watermark was not persisted before the crash, so the 30 delivered earlier are
    # pending too: all 42 already on the topic are recognised and skipped, 18 are resent
    assert restarted.stats.skipped_already_delivered == 42
    assert restarted.stats.resent_after_recovery == 18
    restarted.emit(Prediction, **body(5))
    assert restarted.flush(5)
    events = stored(broker, "predictions")
    assert [e.envelope.sequence for e in events] == list(range(61))
    assert_intact(events)


def test_training_run_helper_emits_started_then_completed_with_profiles(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker, tmp_path: Any
) -> None:
    producer = make_producer()
    artefact = tmp_path / "model.bin"
    artefact.write_bytes(b"weights")
    with producer.training_run(
        model="churn", inputs=["ds:customers"], location=VIRGINIA, code_version="abc",
        purpose="churn-analytics", parameters={"depth": 6},
    ) as run:  # fmt: skip
        run.profile_features({"tenure": [float(i) for i in range(100)], "plan": ["a", "b"] * 50})
        run.profile_predictions([i / 100 for i in range(100)])
        run.log_metrics(auc=0.9)
        run.set_output("7", artefact)
    with (
        pytest.raises(RuntimeError),
        producer.training_run(
            model="churn", inputs=[], location=VIRGINIA, code_version="abc", purpose="p"
        ),
    ):
        raise RuntimeError("out of memory")
    assert producer.flush(5)
    runs = [e for e in stored(broker, "training") if isinstance(e, TrainingRun)]
    assert [r.status for r in runs] == ["started", "completed", "started", "failed"]
    done = runs[1]
    assert done.model_version == "7" and done.metrics == {"auc": 0.9}
    assert done.parameters == {"depth": "6"}
    assert done.artifact_digest is not None and len(done.artifact_digest) == 64
    tenure, plan = done.feature_profiles
    assert (
        tenure.kind == "numeric" and sum(tenure.bin_counts) == 100 and len(tenure.bin_edges) == 11
    )
    assert plan.categories == ("a", "b") and plan.category_counts == (50, 50)
    assert done.prediction_profile is not None
    assert runs[3].error == "RuntimeError: out of memory"


def test_lineage_helpers(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    producer.declare_asset(**body(0))
    producer.data_movement(**body(1))
    producer.model_deployed(model_name="churn", model_version="7", location=FRANKFURT)
    assert producer.flush(5)
    (deployed,) = stored(broker, "deployments")
    assert deployed.status == "deployed" and deployed.location == FRANKFURT  # type: ignore[attr-defined]


def test_emit_never_blocks_on_an_unreachable_transport(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer(queue_limit=1)
    broker.available = False
    start = time.monotonic()
    for _ in range(200):
        producer.emit(Prediction, **body(5))
    assert time.monotonic() - start < 5
    assert not producer.flush(0.2)


def test_async_emit_from_an_event_loop(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    import asyncio

    async def service(producer: AuditProducer) -> list[int]:
        receipts = [await producer.aemit(Prediction, **body(5)) for _ in range(20)]
        assert await producer.aflush(5)
        return [r.sequence for r in receipts]

    for mode in ("block", "raise"):
        producer = make_producer(on_full=mode)
        sequences = asyncio.run(service(producer))
        assert sequences == sorted(sequences) and len(set(sequences)) == 20
        producer.close(5)
    assert [e.envelope.sequence for e in stored(broker, "predictions")] == list(range(40))
