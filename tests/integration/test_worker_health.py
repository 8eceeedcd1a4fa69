"""`auditline worker` with AUDITLINE_METRICS__PORT, on a broker of the test's own (stopped at the
end): the ready log; /metrics parses as Prometheus text and counts the events, dead letters and
alerts of the run; faust's own pages (table data) are not served; /readyz turns 503 when the
broker goes away while /healthz stays 200."""

from __future__ import annotations

import http.client
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from auditline.producer import AuditProducer
from auditline.testing.kafka_broker import LocalKafka
from tests.integration.test_worker import emit_pinned_copy, platform_settings, produce_fuzz, worker
from tests.kafka_helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.worker]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    except OSError as exc:
        return 0, str(exc)


def until(check: Callable[[], bool], timeout: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, why()
        time.sleep(0.5)


def sample(port: int, name: str, **labels: str) -> float:
    _, text = get(port, "/metrics")
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_worker_metrics_ready_log_and_readiness(tmp_path: Path) -> None:
    broker = LocalKafka()
    broker.start()
    bootstrap, prefix, port = broker.bootstrap, "health.auditline", free_port()
    process = None
    try:
        with AuditProducer(platform_settings(bootstrap, prefix, tmp_path)) as audit:
            emit_pinned_copy(audit)
            assert audit.flush(30)
        produce_fuzz(bootstrap, prefix, 40, seed=3)
        process = worker(bootstrap, prefix, tmp_path, AUDITLINE_METRICS__PORT=str(port))
        log = tmp_path / "worker-w1.log"
        until(lambda: get(port, "/readyz")[0] == 200, 120, lambda: get(port, "/readyz")[1])
        until(lambda: "worker: ready:" in log.read_text(), 30, lambda: log.read_text()[-3000:])
        ready = next(line for line in log.read_text().splitlines() if "worker: ready:" in line)
        assert bootstrap in ready and f"{prefix}.movements" in ready
        assert f"http://127.0.0.1:{port}/metrics" in ready
        assert get(port, "/healthz") == (200, "ok\n")

        def alerted() -> float:
            return sample(port, "auditline_worker_alerts_total", kind="violation", rule="RES-PIN")

        until(lambda: alerted() == 1, 60, lambda: get(port, "/metrics")[1][-3000:])
        until(
            lambda: sample(port, "auditline_worker_dead_letters_total") == 40, 60,
            lambda: get(port, "/metrics")[1][-3000:],
        )  # fmt: skip
        _, text = get(port, "/metrics")
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {
            "auditline_worker_events", "auditline_worker_batch_seconds",
            "auditline_worker_consumer_lag", "auditline_worker_unread",
            "auditline_producer_spool_records", "auditline_producer_oldest_pending_seconds",
        } <= names  # fmt: skip
        # 2 platform events + 20 fuzz records on the movements topic, the declaration on assets
        assert sample(port, "auditline_worker_events_total", topic=f"{prefix}.movements") == 21
        assert sample(port, "auditline_worker_events_total", topic=f"{prefix}.assets") == 1
        assert get(port, "/table/")[0] == 404  # faust's table pages expose data: off

        broker.stop()
        until(lambda: get(port, "/readyz")[0] == 503, 40, lambda: "still ready")
        assert "no Kafka broker answered" in get(port, "/readyz")[1]
        assert get(port, "/healthz")[0] == 200  # alive, not ready
    finally:
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        broker.close()
