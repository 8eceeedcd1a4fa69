"""Alert deliveries on the real broker: `auditline alerts serve` as a process of its own.

Webhook: a local receiver fails (503s, then refused connections) and recovers; every alert that
passes the filters arrives, signed, in order, none of the others. SSE: a client that disconnects
and comes back with `Last-Event-ID` misses nothing and gets nothing twice. Tail prints them.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from auditline.alerting.payloads import verify_signature
from auditline.events import PolicyViolation
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from auditline.testing.kafka_broker import LocalKafka
from tests.kafka_helpers import free_port, read_topic
from tests.unit.alerting.samples import violation_body

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SECRET = "hook-secret-for-the-test"


def emit(bootstrap: str, prefix: str, spool: Path, numbers: range) -> None:
    """Alerts as the worker publishes them: even numbers high severity, odd ones low."""
    settings = AuditlineSettings(
        kafka={"bootstrap_servers": bootstrap}, topic_prefix=prefix,
        producer={"service": "worker", "instance": "w1"},
        spool={"path": str(spool), "fsync": "never"},
    )  # fmt: skip
    with AuditProducer(settings) as producer:
        bodies = [violation_body(n, severity="high" if n % 2 == 0 else "low") for n in numbers]
        producer.emit_many(PolicyViolation, bodies)
        assert producer.flush(30)


class Receiver:
    """A webhook receiver that can answer 503, go away (refused connections) and come back."""

    def __init__(self, port: int) -> None:
        self.port, self.mode, self.failed = port, "ok", 0
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.loop = asyncio.new_event_loop()
        self.site: web.TCPSite | None = None
        self.runner: web.AppRunner | None = None
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.mode == "fail":
            self.failed += 1
            return web.Response(status=503)
        if self.mode == "redirect":
            raise web.HTTPFound("/elsewhere")
        if self.mode == "reject":
            return web.Response(status=400)
        self.requests.append((dict(request.headers), body))
        return web.Response(status=204)

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def up(self) -> None:
        async def start() -> None:
            app = web.Application()
            app.router.add_post("/{path:.*}", self._handle)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            self.site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
            await self.site.start()

        self.call(start())

    def down(self) -> None:
        assert self.runner is not None
        self.call(self.runner.cleanup())

    def ids(self) -> list[str]:
        return [headers["Idempotency-Key"] for headers, _ in self.requests]


def serve(env: dict[str, str], subs: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "auditline.cli", "alerts", "serve", str(subs), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    seen = []
    while not any("alerts: ready" in line for line in seen):  # warnings may come first
        line = process.stdout.readline()
        assert line, "".join(seen) + "(serve exited before it was ready)"
        seen.append(line)
    process.seen = seen  # type: ignore[attr-defined]
    return process


def until(condition: Callable[[], bool], seconds: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.2)


@pytest.fixture
def setup(kafka_bootstrap: str, unique: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    prefix = f"t{unique}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")} | {
        "AUDITLINE_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap, "AUDITLINE_TOPIC_PREFIX": prefix,
        "HOOK_SECRET": SECRET,
    }  # fmt: skip
    yield {"prefix": prefix, "env": env, "bootstrap": kafka_bootstrap, "tmp": tmp_path}


def test_webhook_survives_a_failing_receiver_and_delivers_each_matching_alert(
    setup: dict[str, Any], say: Callable[[str], None]
) -> None:
    receiver, port = Receiver(free_port()), free_port()
    receiver.up()
    subs = setup["tmp"] / "subs.yaml"
    subs.write_text(
        "subscriptions:\n"
        "  - name: pager\n    start: earliest\n"
        "    filters: {kinds: [violation], min_severity: high, jurisdictions: [US]}\n"
        f"    webhook: {{url: 'http://127.0.0.1:{receiver.port}/hook', secret_env: HOOK_SECRET,\n"
        "              retries: 60, backoff_s: 0.1, max_backoff_s: 0.5, timeout_s: 2}\n"
        "  - name: nobody-home\n    start: earliest\n"  # never answers: must block no one
        f"    webhook: {{url: 'http://127.0.0.1:{free_port()}/hook', retries: 1000,\n"
        "              backoff_s: 0.1, max_backoff_s: 0.2}\n",
        encoding="utf-8",
    )
    receiver.mode = "fail"
    emit(setup["bootstrap"], setup["prefix"], setup["tmp"] / "spool", range(0, 20))
    service = serve(setup["env"], subs, port)
    try:
        until(lambda: receiver.failed >= 3, 30, lambda: "no request reached the receiver")
        receiver.down()  # after some 503s, refused connections
        emit(setup["bootstrap"], setup["prefix"], setup["tmp"] / "spool2", range(20, 40))
        time.sleep(2)
        receiver.mode = "ok"
        receiver.up()
        expected = [f"v-{n}" for n in range(0, 40, 2)]
        until(lambda: set(receiver.ids()) >= set(expected), 60, lambda: f"got {receiver.ids()}")
        families = scrape(port)
    finally:
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=30)
    assert receiver.failed > 0  # the 503 phase was exercised
    ids = receiver.ids()
    firsts = list(dict.fromkeys(ids))  # deduplicated on the idempotency key
    assert firsts == expected, output  # only the high ones, in the order they were emitted
    for headers, body in receiver.requests:
        assert verify_signature(SECRET.encode(), headers["Auditline-Signature"], body)
        assert not verify_signature(b"wrong", headers["Auditline-Signature"], body)
        assert json.loads(body)["alert"]["alert_id"] == headers["Idempotency-Key"]
    delivered = sample(families, "auditline_webhook_deliveries_total", outcome="delivered")
    assert delivered >= 20
    assert sample(families, "auditline_webhook_attempts_total", result="5xx") >= 1
    assert sample(families, "auditline_alerts_matched_total", rule="RES-PIN") >= 20
    assert sample(families, "auditline_alert_delivery_lag_seconds_count") >= 20
    say(f"webhook: {len(ids)} requests for {len(firsts)} alerts; exit {service.returncode}")
    assert service.returncode == 0, output


@pytest.mark.parametrize(("mode", "reason"), [("reject", "HTTP 400"), ("redirect", "HTTP 302")])
def test_refused_alerts_are_dead_lettered_and_the_subscription_goes_on(
    setup: dict[str, Any], mode: str, reason: str
) -> None:
    receiver, port = Receiver(free_port()), free_port()
    receiver.up()
    receiver.mode = mode
    subs = setup["tmp"] / "subs.yaml"
    subs.write_text(
        "subscriptions:\n  - name: strict\n    start: earliest\n    filters: {min_severity: high}\n"
        f"    webhook: {{url: 'http://u:pw@127.0.0.1:{receiver.port}/hook/t0ken'}}\n",
        encoding="utf-8",
    )
    emit(setup["bootstrap"], setup["prefix"], setup["tmp"] / "spool", range(0, 6))
    service = serve(setup["env"], subs, port)
    try:
        dead = read_topic(setup["bootstrap"], f"{setup['prefix']}.alerts.deadletter", 3)
    finally:
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=30)
    assert [m.headers["alert_id"].decode() for m in dead] == ["v-0", "v-2", "v-4"], output
    reasons = [m.headers["reason"].decode() for m in dead]
    assert all(r.startswith(reason) for r in reasons), reasons
    assert {m.headers["url"].decode() for m in dead} == {f"http://127.0.0.1:{receiver.port}"}
    assert "not signed" in "".join(service.seen) + output  # type: ignore[attr-defined]


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def scrape(port: int) -> list[Any]:
    """The metrics endpoint, parsed with the Prometheus client's own parser (valid or raises)."""
    status, text = get(port, "/metrics")
    assert status == 200
    return list(text_string_to_metric_families(text))


def sample(families: list[Any], name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in families
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_readyz_follows_the_broker(tmp_path: Path) -> None:
    broker = LocalKafka()
    broker.start()
    port = free_port()
    subs = tmp_path / "subs.yaml"
    subs.write_text("subscriptions:\n  - {name: console, sse: {}}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")} | {
        "AUDITLINE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "AUDITLINE_KAFKA__CONNECT_TIMEOUT_S": "5",
    }
    service = None
    try:
        service = serve(env, subs, port)
        until(lambda: get(port, "/readyz")[0] == 200, 30, lambda: get(port, "/readyz")[1])
        assert get(port, "/healthz") == (200, "ok\n")
        broker.stop()
        until(lambda: get(port, "/readyz")[0] == 503, 30, lambda: "still ready")
        assert "no Kafka broker answered" in get(port, "/readyz")[1]
        assert sample(scrape(port), "auditline_ready") == 0
        assert get(port, "/healthz")[0] == 200  # alive, not ready
    finally:
        if service is not None:
            service.send_signal(signal.SIGTERM)
            service.communicate(timeout=30)
        broker.close()


def read_events(port: int, headers: dict[str, str], count: int) -> list[tuple[str, str]]:
    """(id, alert id) of the next ``count`` events of the SSE stream, then hang up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/subscriptions/console/events?from=beginning", headers=headers)
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    events, event_id = [], ""
    while len(events) < count:
        line = response.fp.readline().decode().rstrip("\n")
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            events.append((event_id, json.loads(line[6:])["alert_id"]))
    conn.close()
    return events


def test_sse_resumes_from_last_event_id(setup: dict[str, Any]) -> None:
    port = free_port()
    subs = setup["tmp"] / "subs.yaml"
    subs.write_text(
        "subscriptions:\n  - name: console\n    filters: {min_severity: high}\n    sse: {}\n",
        encoding="utf-8",
    )
    emit(setup["bootstrap"], setup["prefix"], setup["tmp"] / "spool", range(0, 10))
    service = serve(setup["env"], subs, port)
    try:
        first = read_events(port, {}, 3)
        assert [a for _, a in first] == ["v-0", "v-2", "v-4"]
        emit(setup["bootstrap"], setup["prefix"], setup["tmp"] / "spool2", range(10, 20))
        rest = read_events(port, {"Last-Event-ID": first[-1][0]}, 7)
        assert [a for _, a in rest] == [f"v-{n}" for n in range(6, 20, 2)]
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=30)


def test_tail_prints_matching_alerts(setup: dict[str, Any]) -> None:
    emit(setup["bootstrap"], setup["prefix"], setup["tmp"] / "spool", range(0, 6))
    tail = [sys.executable, "-m", "auditline.cli", "alerts", "tail", "--from-beginning",
            "--min-severity", "high", "--idle-exit", "5"]  # fmt: skip
    done = subprocess.run(
        [*tail, "--json"], cwd=ROOT, env=setup["env"], capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["alert_id"] for line in done.stdout.splitlines()] == [
        "v-0", "v-2", "v-4",
    ]  # fmt: skip
    plain = subprocess.run(
        [*tail, "--limit", "1"], cwd=ROOT, env=setup["env"], capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "high" in plain.stdout and "violation RES-PIN deny: data pinned to DE" in plain.stdout
    assert "evidence e-0" in plain.stdout
