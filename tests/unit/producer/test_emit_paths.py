"""``emit`` and ``emit_many`` after their restructuring (validated and encoded before the lock,
sealed under it, one spool write per call): the same events, chains and bytes, from any number
of threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import demo_events
from auditline.errors import InvalidEventError
from auditline.events import DataMovement, Event, Prediction
from auditline.integrity.chain import compute_hash
from auditline.integrity.verify import ChainVerifier
from auditline.producer import AuditProducer
from auditline.producer import spool as spool_module
from auditline.producer.memory import InProcessBroker

CODEC = SingleObjectCodec(Catalogue())
KEYS = {"k1": bytes.fromhex("11" * 32)}
EVENTS = demo_events()
PREDICTION = next(e for e in EVENTS if isinstance(e, Prediction)).model_dump(exclude={"envelope"})
MOVEMENT = next(e for e in EVENTS if isinstance(e, DataMovement)).model_dump(exclude={"envelope"})


def stored(broker: InProcessBroker, suffix: str) -> list[Event]:
    return [CODEC.decode(m.value) for m in broker.read(f"auditline.{suffix}")]


def intact(events: list[Event]) -> bool:
    verifier = ChainVerifier({}, KEYS, require_signature=True)
    return not [f for e in events for f in verifier.observe(e)]


def test_every_kind_goes_out_as_the_codec_writes_it(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    for event in EVENTS:
        producer.emit(type(event), **event.model_dump(exclude={"envelope"}))
    assert producer.flush(5)
    messages = [m for topic in broker.topics.values() for m in topic]
    assert len(messages) == len(EVENTS)
    for message in messages:  # envelope by hand, body compiled: fastavro's bytes all the same
        decoded = CODEC.decode(message.value)
        assert CODEC.encode(decoded) == message.value
        assert compute_hash(decoded) == decoded.envelope.hash
    for event in EVENTS:
        body = event.model_dump(exclude={"envelope"})
        topic = Catalogue().for_model(type(event)).topic
        sent = [CODEC.decode(m.value) for m in broker.read(topic)]
        assert body in [e.model_dump(exclude={"envelope"}) for e in sent]


def test_threads_emitting_at_once_keep_every_stream_gapless_and_chained(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    receipts: list[Any] = []
    start = threading.Barrier(4)

    def work(worker: int) -> None:
        start.wait()
        for i in range(60):
            if (worker + i) % 3 == 0:
                receipts.extend(producer.emit_many(Prediction, [PREDICTION] * 7))
            elif worker % 2:
                receipts.append(producer.emit(Prediction, **PREDICTION))
            else:
                receipts.append(producer.emit(DataMovement, **MOVEMENT))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert producer.flush(10)
    for suffix in ("predictions", "movements"):
        events = stored(broker, suffix)
        assert [e.envelope.sequence for e in events] == list(range(len(events)))
        assert intact(events)
    sent = {(e.envelope.stream, e.envelope.sequence): e.envelope.hash for s in
            ("predictions", "movements") for e in stored(broker, s)}  # fmt: skip
    assert len(sent) == len(receipts) == producer.stats.emitted
    assert {(r.stream, r.sequence): r.hash for r in receipts} == sent
    assert len({r.event_id for r in receipts}) == len(receipts)


def test_emit_many_is_one_spool_write(
    make_producer: Callable[..., AuditProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = make_producer(fsync="always")
    producer.emit(Prediction, **PREDICTION)
    writes: list[int] = []
    fsyncs: list[int] = []
    real_write, real_fsync = spool_module._write_all, os.fsync
    monkeypatch.setattr(
        spool_module, "_write_all", lambda fd, d: writes.append(len(d)) or real_write(fd, d)
    )
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    receipts = producer.emit_many(Prediction, [PREDICTION] * 300)
    assert len(writes) == 1 and len(fsyncs) == 1  # group commit: one write, one fsync
    assert [r.sequence for r in receipts] == list(range(1, 301))
    monkeypatch.undo()
    assert producer.flush(5)


def test_envelope_fields_given_per_call_and_per_body(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
    cet = datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=1)))
    bodies = [
        PREDICTION,
        {**PREDICTION, "event_time": epoch},
        {**PREDICTION, "event_time": before_epoch, "trace_id": "own"},
        {**PREDICTION, "trace_id": None},
    ]
    producer.emit_many(Prediction, bodies, event_time=cet, trace_id="call", tenant="t1")
    producer.emit(Prediction, **PREDICTION)
    assert producer.flush(5)
    events = stored(broker, "predictions")
    envelopes = [e.envelope for e in events]
    expected_time = datetime(2026, 3, 1, 11, 0, 0, 123_000, tzinfo=UTC)
    assert [e.event_time for e in envelopes[:4]] == [expected_time, epoch, before_epoch,
                                                      expected_time]  # fmt: skip
    assert [e.trace_id for e in envelopes] == ["call", "call", "own", None, None]
    assert [e.tenant for e in envelopes] == ["t1"] * 4 + [None]
    now = datetime.now(UTC)
    assert now - timedelta(seconds=5) < envelopes[4].event_time <= now
    assert intact(events)


def test_a_bad_body_in_a_batch_spools_nothing_and_consumes_no_sequence(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    producer.emit(Prediction, **PREDICTION)
    bad = {**PREDICTION, "latency_ms": -1}
    with pytest.raises(InvalidEventError, match="latency_ms"):
        producer.emit_many(Prediction, [PREDICTION, PREDICTION, bad, PREDICTION])
    with pytest.raises(InvalidEventError, match="event_time"):
        producer.emit_many(Prediction, [{**PREDICTION, "event_time": datetime(2026, 1, 1)}])
    assert producer.spool.next_index == 1 and producer.stats.emitted == 1
    assert producer.emit_many(Prediction, []) == []
    producer.emit(Prediction, **PREDICTION)
    assert producer.flush(5)
    events = stored(broker, "predictions")
    assert [e.envelope.sequence for e in events] == [0, 1]
    assert intact(events)
