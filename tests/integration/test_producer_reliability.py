"""No audit event is lost, none is stored twice: real broker and real processes, killed -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import demo_events
from auditline.events import Event, Prediction
from auditline.integrity.verify import ChainVerifier
from auditline.producer import AuditProducer
from auditline.producer.kafka import KafkaTransport
from auditline.settings import AuditlineSettings
from auditline.testing.kafka_broker import LocalKafka
from tests.kafka_helpers import create_topics, read_topic

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BODY = next(e for e in demo_events() if isinstance(e, Prediction)).model_dump(exclude={"envelope"})


@pytest.fixture
def own_broker() -> Iterator[LocalKafka]:
    """A broker of this test's own, so killing it does not disturb other tests."""
    if os.environ.get("AUDITLINE_TEST_KAFKA"):
        pytest.skip("needs a broker it may kill; AUDITLINE_TEST_KAFKA names an external one")
    with LocalKafka() as broker:
        yield broker


def stored_events(bootstrap: str, prefix: str, expected: int) -> list[Event]:
    codec = SingleObjectCodec(Catalogue(prefix))
    topic = Catalogue(prefix).for_model(Prediction).topic
    return [codec.decode(m.value) for m in read_topic(bootstrap, topic, expected, timeout=120)]


def assert_exactly_once_in_order(
    events: list[Event], expected: int, keys: dict[str, bytes]
) -> None:
    sequences = [e.envelope.sequence for e in events]
    assert len(sequences) == len(set(sequences)), (
        f"{len(sequences) - len(set(sequences))} duplicates"
    )
    assert sorted(sequences) == list(range(expected)), "lost events"
    assert sequences == sorted(sequences), "out of order within the stream"
    verifier = ChainVerifier({}, keys, require_signature=True)
    assert [f for e in events for f in verifier.observe(e)] == []


def test_100k_events_survive_a_broker_kill_mid_stream(
    own_broker: LocalKafka, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    topic = Catalogue(prefix).for_model(Prediction).topic
    create_topics(own_broker.bootstrap, [topic], partitions=3)
    settings = AuditlineSettings(
        kafka={"bootstrap_servers": own_broker.bootstrap},
        topic_prefix=prefix,
        producer={"service": "outage", "instance": "i1", "signing_key": "33" * 32},
        spool={"path": str(tmp_path), "fsync": "interval"},
    )
    # a small librdkafka queue, so that the outage backs up into the on-disk spool
    transport = KafkaTransport(settings.kafka.client_conf(), {"queue.buffering.max.messages": 5000})
    total, killed_at = 100_000, 30_000
    producer = AuditProducer(settings, transport=transport)
    restarted = threading.Event()

    def outage() -> None:
        own_broker.kill()
        time.sleep(3)
        own_broker.start()
        restarted.set()

    emitted = 0
    worker: threading.Thread | None = None
    while emitted < total:
        producer.emit_many(Prediction, [BODY] * 500)
        emitted += 500
        if emitted == killed_at:
            worker = threading.Thread(target=outage)
            worker.start()
    assert worker is not None
    worker.join()
    assert restarted.is_set()
    assert producer.flush(180), f"{producer.pending} events still undelivered"
    stats = producer.stats
    producer.close()
    say(
        f"100k events across a broker kill -9: {stats.sent_from_backlog} sent from the spool "
        f"backlog, {stats.sent_directly} directly ({stats})"
    )
    assert stats.sent_from_backlog > 0, "the outage should have backed up into the spool"
    events = stored_events(own_broker.bootstrap, prefix, total)
    assert_exactly_once_in_order(events, total, {"default": bytes.fromhex("33" * 32)})


def child(
    bootstrap: str, spool: Path, prefix: str, count: int, *flags: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.producer_child",
         bootstrap, str(spool), prefix, str(count), *flags],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(process: subprocess.Popen[str], prefix: str, min_delivered: int = 0) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        delivered = int(line.split()[3]) if line.startswith("emitted") else 0
        if line.startswith(prefix) and delivered >= min_delivered:
            return line
    raise AssertionError(f"child ended before printing {prefix!r} (exit {process.wait()})")


def test_a_producing_process_killed_mid_stream_resumes_without_gaps_or_duplicates(
    own_broker: LocalKafka, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    create_topics(
        own_broker.bootstrap, [Catalogue(prefix).for_model(Prediction).topic], partitions=3
    )
    spool = tmp_path / "spool"

    # 1. killed while sending: some events in flight, some delivered without their ack recorded
    first = child(own_broker.bootstrap, spool, prefix, 100_000)
    wait_for(first, "emitted", min_delivered=2000)
    first.send_signal(signal.SIGKILL)
    first.wait()

    # 2. the broker is down: everything goes to the spool; the producer is killed again
    own_broker.kill()
    second = child(own_broker.bootstrap, spool, prefix, 1000)
    wait_for(second, "done")
    second.send_signal(signal.SIGKILL)
    second.wait()

    # 3. broker back; a new process resends what is missing, emits more and closes cleanly
    own_broker.start()
    third = child(own_broker.bootstrap, spool, prefix, 500, "--flush")
    closed = wait_for(third, "closed")
    assert third.wait(60) == 0
    assert closed.startswith("closed True"), closed
    assert "skipped_already_delivered=0," not in closed, "delivered events must be recognised"
    say(f"producer killed -9 twice, restarted: {closed.strip()}")

    events = stored_events(own_broker.bootstrap, prefix, 3500)
    total = len({e.envelope.sequence for e in events})
    assert total >= 2000 + 1000 + 500
    assert_exactly_once_in_order(events, total, {"default": bytes.fromhex("22" * 32)})
