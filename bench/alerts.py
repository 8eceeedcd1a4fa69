"""Alert deliveries against the real broker, beside a raw loop doing the same work.

backlog = N violation alerts already on the topic; `auditline alerts serve` (a process of its
          own) delivers them to a local webhook receiver: deliveries/s until the last arrives
raw     = the same N alerts consumed (confluent-kafka), decoded and POSTed one by one by a plain
          loop with aiohttp (no filters, signature, retries, metrics or commits per batch)
steady  = alerts emitted at RATE/s for SECONDS while serve runs: emit -> delivery p50/p99, and
          emit -> `auditline alerts tail` line p50/p99 (a tail process beside it)

Starts a local Kafka the way the tests do (or uses AUDITLINE_TEST_KAFKA). Ends with one JSON line,
with CPU seconds per alert of the serve process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import aiohttp
from _process import cpu_seconds, free_port
from _report import report
from aiohttp import web
from confluent_kafka import Consumer

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import PolicyViolation
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from auditline.testing.kafka_broker import LocalKafka

N, RATE, SECONDS = 3_000, 100, 10
ROOT = Path(__file__).resolve().parents[1]
BODY = {
    "decision": "deny", "severity": "high", "rule_id": "RES-PIN", "rule_version": "1",
    "policy_version": "2026.1", "message": "data pinned to DE reaches US (serving)",
    "facts": {"hop": "serving", "from": "DE", "to": "US", "via": "ds:a <- model:m:1"},
}  # fmt: skip


class Receiver:
    """Records when each alert id arrived (first time)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrived: dict[str, float] = {}
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()

    async def _handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key") or (await request.json())["violation_id"]
        self.arrived.setdefault(key, time.time())
        return web.Response(status=204)

    def wait_for(self, ids: set[str], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while not ids <= self.arrived.keys():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ids - self.arrived.keys())} alerts never arrived")
            time.sleep(0.05)
        return max(self.arrived[i] for i in ids)


def emit(
    settings: AuditlineSettings, ids: list[str], rate: float | None = None
) -> dict[str, float]:
    """Emit violations with these ids (at ``rate``/s, or at once); their emission times."""
    sent = {}
    with AuditProducer(settings) as producer:
        start = time.monotonic()
        for n, alert_id in enumerate(ids):
            if rate is not None:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            producer.emit(PolicyViolation, violation_id=alert_id, subject_event_id=alert_id,
                          **BODY)  # fmt: skip
            sent[alert_id] = time.time()
        assert producer.flush(60)
    return sent


def raw_loop(bootstrap: str, topic: str, url: str, n: int) -> float:
    """Consume, decode, POST, one by one: seconds for ``n`` alerts."""
    codec = SingleObjectCodec(Catalogue())
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{time.time()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])

    async def post_all() -> float:
        done, start = 0, 0.0
        async with aiohttp.ClientSession() as session:
            while done < n:
                for message in consumer.consume(500, 0.5):
                    start = start or time.perf_counter()  # from the first record (after joining)
                    event = codec.decode(message.value() or b"")
                    async with session.post(url, data=event.model_dump_json()) as response:
                        await response.read()
                    done += 1
        return time.perf_counter() - start

    try:
        return asyncio.run(post_all())
    finally:
        consumer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def serve_process(env: dict[str, str], subs: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "auditline.cli", "alerts", "serve", str(subs), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None and "ready" in process.stdout.readline()
    return process


def main() -> None:
    figures: dict[str, float] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="auditline-bench-") as tmp:
        bootstrap = (
            os.environ.get("AUDITLINE_TEST_KAFKA") or stack.enter_context(LocalKafka()).bootstrap
        )
        prefix = f"bench{int(time.time())}"
        settings = AuditlineSettings(
            kafka={"bootstrap_servers": bootstrap}, topic_prefix=prefix,
            producer={"service": "worker", "instance": "w1"},
            spool={"path": str(Path(tmp) / "spool"), "fsync": "never"},
        )  # fmt: skip
        receiver = Receiver()
        url = f"http://127.0.0.1:{receiver.port}/hook"
        topic = Catalogue(prefix).for_model(PolicyViolation).topic
        backlog = [f"b-{n}" for n in range(N)]
        emit(settings, backlog)
        raw_s = raw_loop(bootstrap, topic, url, N)
        receiver.arrived.clear()
        subs = Path(tmp) / "subs.yaml"
        subs.write_text(
            "subscriptions:\n  - name: bench\n    start: earliest\n"
            f"    webhook: {{url: '{url}', secret_env: HOOK, max_per_second: 100000}}\n",
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")} | {
            "AUDITLINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "AUDITLINE_TOPIC_PREFIX": prefix,
            "HOOK": "bench-secret",
        }  # fmt: skip
        started = time.time()
        service = serve_process(env, subs, free_port())
        cpu_before = cpu_seconds(service.pid)
        last = receiver.wait_for(set(backlog), 300)
        cpu_backlog = cpu_seconds(service.pid) - cpu_before
        first = min(receiver.arrived.values())  # from the first delivery (after joining)
        figures["raw_eps"] = N / raw_s
        figures["serve_eps"] = N / (last - first)
        figures["serve_start_s"] = first - started
        figures["ratio"] = figures["serve_eps"] / figures["raw_eps"]
        figures["serve_cpu_ms_per_alert"] = cpu_backlog / N * 1000
        tail = subprocess.Popen(
            [sys.executable, "-m", "auditline.cli", "alerts", "tail", "--json"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        seen: dict[str, float] = {}
        reader = threading.Thread(target=_read_tail, args=(tail, seen), daemon=True)
        reader.start()
        time.sleep(3)  # tail assigned at the end of the topic
        steady = [f"s-{n}" for n in range(RATE * SECONDS)]
        sent = emit(settings, steady, rate=RATE)
        receiver.wait_for(set(steady), 120)
        deadline = time.monotonic() + 30
        while not set(steady) <= seen.keys() and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in (service, tail):
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
        hook_ms = [(receiver.arrived[i] - sent[i]) * 1000 for i in steady]
        tail_ms = [(seen[i] - sent[i]) * 1000 for i in steady if i in seen]
        figures["p50_webhook_ms"] = statistics.median(hook_ms)
        figures["p99_webhook_ms"] = percentile(hook_ms, 0.99)
        figures["p50_tail_ms"] = statistics.median(tail_ms) if tail_ms else -1
        figures["p99_tail_ms"] = percentile(tail_ms, 0.99) if tail_ms else -1
    report("alerts", figures, backlog=N, rate=RATE, seconds=SECONDS)


def _read_tail(tail: subprocess.Popen[str], seen: dict[str, float]) -> None:
    import json

    assert tail.stdout is not None
    for line in tail.stdout:
        seen.setdefault(json.loads(line)["alert_id"], time.time())


if __name__ == "__main__":
    main()
