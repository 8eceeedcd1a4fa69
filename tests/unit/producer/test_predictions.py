"""Single predictions gathered into PredictionBatch events: by count, by age, on flush and close;
a batch that cannot be emitted stays buffered and nothing is lost."""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.errors import EmitError, InvalidEventError
from auditline.events import PredictionBatch
from auditline.producer import AuditProducer, SpoolFullError
from auditline.producer.memory import InProcessBroker
from auditline.producer.predictions import PredictionBuffer

MODEL = {"model_name": "churn", "model_version": "3", "location": {"country": "DE"}}


def batches(broker: InProcessBroker) -> list[PredictionBatch]:
    codec = SingleObjectCodec(Catalogue())
    found = [codec.decode(m.value) for m in broker.read("auditline.predictions")]
    assert all(isinstance(b, PredictionBatch) for b in found)
    return found  # type: ignore[return-value]


def record_until_full(buffer: PredictionBuffer, every: int, **fields: Any) -> int:
    """Predictions x = 0, 1, ... flushed every ``every`` until the spool refuses; how many."""
    written = 0
    with pytest.raises(SpoolFullError):
        for _ in range(10_000):
            buffer.record({"x": float(written)}, **fields)
            written += 1
            if written % every == 0:
                buffer.flush()
    return written


def flush_when_there_is_room(buffer: PredictionBuffer, timeout: float = 10) -> None:
    """Flush the kept predictions, again while the spool is full (delivery reports free it)."""
    deadline = time.monotonic() + timeout
    while buffer.buffered and time.monotonic() < deadline:
        with contextlib.suppress(SpoolFullError):
            buffer.flush()
        time.sleep(0.05)


def test_count_bound_columns_and_flush(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    buffer = producer.prediction_buffer(**MODEL, max_count=4, max_delay_ms=60_000)
    for i in range(10):
        buffer.record({"x": float(i), **({"y": 1.0} if i == 9 else {})}, score=i / 10,
                      categorical_features={"plan": "pro"}, latency_ms=2.0)  # fmt: skip
    assert buffer.buffered == 2
    assert producer.flush(5)
    found = batches(broker)
    assert [b.count for b in found] == [4, 4, 2]
    assert [v for b in found for v in b.numeric_features[0].values] == [float(i) for i in range(10)]
    last = found[-1]
    assert [c.name for c in last.numeric_features] == ["x", "y"]
    assert last.numeric_features[1].values == (None, 1.0)
    assert last.categorical_features[0].values == ("pro", "pro")
    assert last.scores == pytest.approx((0.8, 0.9)) and last.latency_ms == 4.0  # their sum
    assert last.subject_jurisdictions == ()


def test_age_bound_emits_without_a_flush(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    buffer = producer.prediction_buffer(**MODEL, max_delay_ms=50)
    for _ in range(3):
        buffer.record({"x": 1.0}, subject_jurisdiction="FR")
    deadline = time.monotonic() + 5
    while buffer.buffered and time.monotonic() < deadline:
        time.sleep(0.02)
    assert buffer.buffered == 0
    assert producer.flush(5)
    (batch,) = batches(broker)
    assert batch.count == 3 and batch.subject_jurisdictions == ("FR",) * 3


def test_scores_present_in_some_rows_only_start_a_new_batch_and_close_flushes(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    buffer = producer.prediction_buffer(**MODEL, max_delay_ms=60_000)
    buffer.record({"x": 1.0}, score=0.5)
    buffer.record({"x": 2.0})
    producer.close()
    found = batches(broker)
    assert [(b.count, b.scores) for b in found] == [(1, (0.5,)), (1, ())]
    with pytest.raises(EmitError, match="closed"):
        buffer.record({"x": 3.0})


def test_a_full_spool_keeps_the_predictions_until_there_is_room(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer(queue_limit=1, max_bytes=6_000, segment_bytes=1_500, on_full="raise")
    buffer = producer.prediction_buffer(**MODEL, max_count=100, max_delay_ms=60_000)
    broker.available = False
    rows = record_until_full(buffer, every=100)  # batches of 100 until the spool is full
    assert buffer.buffered > 0  # kept, not dropped
    broker.available = True
    flush_when_there_is_room(buffer)
    assert producer.flush(10)
    values = [v for b in batches(broker) for v in b.numeric_features[0].values]
    assert values == [float(i) for i in range(rows)]


def test_a_bad_prediction_fails_its_own_call_and_takes_nothing_with_it(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    buffer = producer.prediction_buffer(**MODEL, max_delay_ms=50)
    values = {"x": 0.0}
    for i in range(3):
        values["x"] = float(i)  # a dict the caller reuses: each prediction keeps its own values
        buffer.record(values, score=0.5)
    for bad in ({"subject_jurisdiction": "de"}, {"latency_ms": -1.0}, {"label": 3}):
        with pytest.raises(InvalidEventError):
            buffer.record({"x": 9.0}, score=0.5, **bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError):
        buffer.record({"x": "high"}, score=0.5)  # type: ignore[dict-item]
    assert producer.flush(5)
    (batch,) = batches(broker)
    assert batch.numeric_features[0].values == (0.0, 1.0, 2.0)
    buffer.record({"x": 4.0})
    deadline = time.monotonic() + 5
    while buffer.buffered and time.monotonic() < deadline:
        time.sleep(0.02)
    assert buffer.buffered == 0, "the timer goes on"


def test_kept_rows_of_two_shapes_are_written_as_two_batches(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer(queue_limit=1, max_bytes=3_000, segment_bytes=1_000, on_full="raise")
    buffer = producer.prediction_buffer(**MODEL, max_count=10, max_delay_ms=60_000)
    broker.available = False
    written = record_until_full(buffer, every=10, score=0.5)
    buffer.record({"x": float(written)})  # no score: a new shape behind the kept rows
    written += 1
    broker.available = True
    flush_when_there_is_room(buffer)
    assert producer.flush(10)
    found = batches(broker)
    assert [v for b in found for v in b.numeric_features[0].values] == [
        float(i) for i in range(written)
    ]
    assert all(len(b.scores) in (0, b.count) for b in found)
    assert found[-1].scores == ()


def test_close_with_a_full_spool_closes_and_says_what_was_not_written(
    make_producer: Callable[..., AuditProducer],
    broker: InProcessBroker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = make_producer(queue_limit=1, max_bytes=3_000, segment_bytes=1_000, on_full="raise")
    buffer = producer.prediction_buffer(**MODEL, max_count=10_000, max_delay_ms=60_000)
    broker.available = False
    for i in range(500):
        buffer.record({"x": float(i)}, score=0.5)
    assert producer.close(0.5) is False
    assert producer._stop.is_set()
    assert "500 predictions of churn 3 not written at close" in caplog.text
    with pytest.raises(EmitError, match="closed"):
        buffer.record({"x": 1.0})


def test_what_the_schema_refuses_is_refused_at_the_call_or_at_creation(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    with pytest.raises(InvalidEventError):
        producer.prediction_buffer(**MODEL, sample_rate=0.0)
    with pytest.raises(InvalidEventError):
        producer.prediction_buffer(**MODEL, artifact_digest="sha256:abc")
    buffer = producer.prediction_buffer(**MODEL, max_delay_ms=60_000)
    for bad in (
        {"subject_jurisdiction": "DE\n"}, {"subject_jurisdiction": 7}, {"score": 10**400},
        {"numeric_features": {"": 1.0}}, {"numeric_features": None},
    ):  # fmt: skip
        call = {"numeric_features": {"x": 1.0}, **bad}
        with pytest.raises(InvalidEventError):
            buffer.record(**call)  # type: ignore[arg-type]
    plan = enum.StrEnum("Plan", {"PRO": "pro"})
    buffer.record({"x": 1.0}, categorical_features={"plan": plan.PRO}, label=np.str_("yes"))
    assert producer.flush(5)
    (batch,) = batches(broker)
    assert batch.categorical_features[0].values == ("pro",) and batch.labels == ("yes",)
    assert buffer.rejected == 0


def test_a_send_failure_after_spooling_loses_nothing(
    make_producer: Callable[..., AuditProducer],
    broker: InProcessBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = make_producer()
    buffer = producer.prediction_buffer(**MODEL, max_count=2, max_delay_ms=60_000)
    calls = {"n": 0}
    produce = producer.transport.produce

    def refusing(message: object, token: int) -> None:  # librdkafka refusing, once
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("message refused")
        produce(message, token)  # type: ignore[arg-type]

    monkeypatch.setattr(producer.transport, "produce", refusing)
    for i in range(7):
        buffer.record({"x": float(i)})
    assert producer.flush(10)
    values = [v for b in batches(broker) for v in b.numeric_features[0].values]
    assert sorted(values) == [float(i) for i in range(7)]  # each once, the refused one resent


def test_sparse_columns_are_split_below_the_byte_bound(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    buffer = producer.prediction_buffer(**MODEL, max_count=1000, max_bytes=20_000,
                                        max_delay_ms=60_000)  # fmt: skip
    for i in range(300):
        buffer.record({f"f{(i * 20 + j) % 2000}": 1.0 for j in range(20)})
    assert producer.flush(10)
    found = batches(broker)
    assert sum(b.count for b in found) == 300 and len(found) > 1
    assert all(len(b.numeric_features) * b.count <= 20_000 for b in found)
