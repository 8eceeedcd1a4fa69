"""The sink against the real broker and the embedded engine: exactly once across kill -9."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from auditline.sinks.migrate import migrate
from auditline.sinks.store import connect
from auditline.sinks.writer import Sink
from confluent_kafka import Message, Producer

from auditline.demo import _bodies
from auditline.events import Prediction
from auditline.producer import AuditProducer
from auditline.settings import ClickHouseSettings, SinkSettings
from tests.kafka_helpers import cli_env, producer_settings, read_topic

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PREDICTION = next(b for m, b in _bodies() if m is Prediction)


def sink_process(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "auditline.cli", "sink", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_killing_the_sink_repeatedly_stores_every_event_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    env = cli_env(kafka_bootstrap, prefix, f"chdb://{tmp_path / 'engine'}", "audit")
    total = 12_000
    done = threading.Event()

    def produce() -> None:
        with AuditProducer(
            producer_settings(kafka_bootstrap, prefix, tmp_path / "spool")
        ) as producer:
            for _ in range(total // 100):
                producer.emit_many(Prediction, [PREDICTION] * 100)
                time.sleep(0.05)
            assert producer.flush(60)
        done.set()

    emitter = threading.Thread(target=produce)
    emitter.start()
    kills = 0
    rng = random.Random(7)
    while not done.is_set() or kills < 4:
        sink = sink_process(env)
        time.sleep(rng.uniform(2.5, 4.0))
        sink.send_signal(signal.SIGKILL)
        sink.wait()
        kills += 1
    emitter.join()
    final = sink_process(env, "--idle-exit", "8")
    output, _ = final.communicate(timeout=180)
    assert final.returncode == 0, output
    say(f"sink killed -9 {kills} times; last run: {output.strip().splitlines()[-1]}")

    query = (
        "SELECT count() AS n, uniqExact(event_id) AS unique_ids FROM audit.audit_log "
        "WHERE kind = 'Prediction'"  # (the producer's checkpoints are stored too)
    )
    counted = subprocess.run(
        [sys.executable, "-m", "auditline.cli", "sql", query, "--format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(counted.stdout) == {"n": total, "unique_ids": total}


def test_undecodable_records_are_dead_lettered_and_the_sink_goes_on(
    kafka_bootstrap: str, tmp_path: Path, topic_prefix: str, store_settings: ClickHouseSettings
) -> None:
    settings = producer_settings(kafka_bootstrap, topic_prefix, tmp_path / "spool").model_copy(
        update={"clickhouse": store_settings, "sink": SinkSettings(group_id=f"sink-{topic_prefix}")}
    )
    store = connect(store_settings)
    migrate(store)
    sink = Sink(settings, store)  # creates the topics
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    assets = f"{topic_prefix}.assets"
    for junk in (b"", b"\xc3\x01" + bytes(8) + b"xx", b"not avro at all"):
        raw.produce(assets, junk, b"junk")
    raw.flush(10)
    with AuditProducer(settings) as producer:
        for model, body in _bodies():
            producer.emit(model, **body)
        assert producer.flush(30)
    stats = sink.run(idle_exit_s=6)
    sink.close()
    assert stats.dead_lettered == 3 and stats.stored == 9  # 8 events and the final checkpoint
    dead = read_topic(kafka_bootstrap, f"{topic_prefix}.deadletter", 3)
    reasons = sorted(m.headers["reason"].decode() for m in dead)
    assert any("shorter than the 10-byte" in r for r in reasons)
    assert any("no bundled schema has fingerprint" in r for r in reasons)
    assert any("not the single-object marker" in r for r in reasons)
    assert {m.headers["source_topic"].decode() for m in dead} == {assets}
    _, rows = store.rows(f"SELECT count() FROM `{store.database}`.audit_log")
    assert rows == [(9,)]


def test_a_batch_stored_but_not_committed_is_read_again_and_stored_once(
    kafka_bootstrap: str, tmp_path: Path, topic_prefix: str, store_settings: ClickHouseSettings
) -> None:
    """A crash between the insert and the commit, without killing anything: the first sink stores
    a batch and stops before its commit; the next one (the same static member) reads it again."""
    sink_settings = SinkSettings(group_id=f"sink-{topic_prefix}", instance_id=f"i-{topic_prefix}")
    settings = producer_settings(kafka_bootstrap, topic_prefix, tmp_path / "spool").model_copy(
        update={"clickhouse": store_settings, "sink": sink_settings}
    )
    store = connect(store_settings)
    migrate(store)
    first = Sink(settings, store)
    with AuditProducer(settings) as producer:
        producer.emit_many(Prediction, [PREDICTION] * 500)
        assert producer.flush(30)
    messages: list[Message] = []
    deadline = time.monotonic() + 60
    while len(messages) < 500:
        assert time.monotonic() < deadline, len(messages)
        messages += [m for m in first.consumer.consume(500, 1.0) if m.error() is None]
    first.process(messages)  # stored, not committed
    first.dead_letters.flush(10)
    second = Sink(settings, store)  # takes the static member's partitions over
    stats = second.run(idle_exit_s=6)
    second.close()
    first.close()
    assert first.stats.stored == len(messages) and stats.skipped_present == len(messages)
    _, rows = store.rows(
        f"SELECT count(), uniqExact(event_id) FROM `{store.database}`.audit_log "
        "WHERE kind = 'Prediction'"
    )
    assert rows == [(500, 500)]
