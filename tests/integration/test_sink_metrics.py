"""`auditline sink` with AUDITLINE_METRICS__PORT: /metrics parses as Prometheus text and counts
what was stored; /readyz is ready once assigned, caught up and the store answers."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from auditline.demo import _bodies
from auditline.events import Prediction
from auditline.producer import AuditProducer
from tests.kafka_helpers import cli_env, free_port, producer_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PREDICTION = next(b for m, b in _bodies() if m is Prediction)


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def stored(port: int) -> float:
    _, text = get(port, "/metrics")
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "auditline_sink_stored_total"
    )


def test_sink_metrics_and_readiness(kafka_bootstrap: str, tmp_path: Path, unique: str) -> None:
    prefix, port = f"t{unique}.auditline", free_port()
    env = cli_env(kafka_bootstrap, prefix, f"chdb://{tmp_path / 'engine'}", "audit") | {
        "AUDITLINE_METRICS__PORT": str(port)
    }
    sink = subprocess.Popen(
        [sys.executable, "-m", "auditline.cli", "sink"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert sink.stdout is not None
        line = sink.stdout.readline()
        assert f"sink: ready: {kafka_bootstrap}" in line and f"metrics on port {port}" in line
        assert get(port, "/healthz") == (200, "ok\n")
        settings = producer_settings(kafka_bootstrap, prefix, tmp_path / "spool")
        with AuditProducer(settings) as producer:
            producer.emit_many(Prediction, [PREDICTION] * 200)
            assert producer.flush(30)
        deadline = time.monotonic() + 60
        while stored(port) < 201:  # 200 predictions and the producer's final checkpoint
            assert time.monotonic() < deadline, get(port, "/metrics")[1][-2000:]
            time.sleep(0.3)
        while get(port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, get(port, "/readyz")
            time.sleep(0.3)
        _, text = get(port, "/metrics")
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"auditline_sink_batch_seconds", "auditline_sink_consumer_lag"} <= names
    finally:
        sink.send_signal(signal.SIGTERM)
        output, _ = sink.communicate(timeout=60)
    assert sink.returncode == 0, output
