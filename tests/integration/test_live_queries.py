"""Auditor commands while `auditline sink` owns the embedded store, against the real broker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from auditline.demo import _bodies
from auditline.events import Prediction
from auditline.producer import AuditProducer
from tests.kafka_helpers import cli_env, producer_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PREDICTION = next(b for m, b in _bodies() if m is Prediction)
COUNT = "SELECT count() AS n FROM audit.audit_log"


def _env(bootstrap: str, prefix: str, engine: Path) -> dict[str, str]:
    return cli_env(bootstrap, prefix, f"chdb://{engine}", "audit") | {
        "AUDITLINE_SINK__BATCH_MAX_EVENTS": "100"
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditline.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _count(env: dict[str, str]) -> int:
    done = _cli(env, "sql", COUNT, "--format", "json")
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["n"])


def test_auditors_query_the_store_while_the_sink_owns_it(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix, engine, total = f"t{unique}.auditline", tmp_path / "engine", 600
    env = _env(kafka_bootstrap, prefix, engine)
    sink = subprocess.Popen(
        [sys.executable, "-m", "auditline.cli", "sink"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (engine / "endpoint.json").exists():
            assert sink.poll() is None and time.monotonic() < deadline, "the sink did not start"
            time.sleep(0.2)
        assert _count(env) == 0
        settings = producer_settings(kafka_bootstrap, prefix, tmp_path / "spool")
        with AuditProducer(settings) as producer:
            for _ in range(total // 100):
                producer.emit_many(Prediction, [PREDICTION] * 100)
            assert producer.flush(60)
        seen: list[int] = []  # the producer may add its own records (checkpoints) to the total
        while len(seen) < 2 or seen[-1] < total or seen[-1] != seen[-2]:
            assert time.monotonic() < deadline + 120, f"counts seen: {seen}"
            seen.append(_count(env))  # each call is another process: it reads via the sink
            assert seen == sorted(seen)
            time.sleep(0.5)
        say(f"live counts while the sink ran: {seen}")
    finally:
        sink.send_signal(signal.SIGTERM)
        output, _ = sink.communicate(timeout=60)
    assert sink.returncode == 0, output
    assert not (engine / "endpoint.json").exists()
    assert _count(env) == seen[-1]  # the sink is gone: this process opens the engine itself
