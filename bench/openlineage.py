"""OpenLineage ingestion: RunEvents/s over HTTP and over Kafka, beside the same work in-process.

Events: N Spark-shaped COMPLETE RunEvents (the residency fixture's shape: two auditline facets,
symlinks, columnLineage, a parent run; ~4 KB each), each with its own run id and datasets placed
by the fixture inventory; each becomes 5 audit events (the evidence, two declarations, one
movement … sealed, spooled and sent to the broker).

raw    = the ingest core in this process: ``Ingestor.ingest`` (check, place, convert, validate,
         seal, spool, produce) over batches of 200 events, then the producer flushed: the work
         both services do, without their transport
http   = ``auditline openlineage serve`` (a process), CONCURRENCY aiohttp clients here posting
         one event a request as HttpTransport does: events / time from the first request to the
         last answer; p50/p99 of the requests
kafka  = the same N events in the input topic, then ``auditline openlineage consume`` (a process)
         until it has read them all: events / time from its ready line to the last batch
*_cpu_us_per_event = CPU time of that process (raw: this one) per event; http_client_cpu: the
         posting clients' (this process)
ratio_http / ratio_kafka = events/s over the transport / raw events/s
Asserted: each path accepted all N; the evidence topic holds N events per path.

Starts a local Kafka the way the tests do (or uses AUDITLINE_TEST_KAFKA); ends with one JSON line.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import aiohttp
from _process import cpu_seconds, free_port
from _report import report
from confluent_kafka import Consumer, Producer, TopicPartition

from auditline.catalogue import Catalogue
from auditline.events import OpenLineageEvent
from auditline.openlineage.ingest import Ingestor
from auditline.openlineage.locations import load_inventory
from auditline.openlineage.mapping import MappingConfig
from auditline.openlineage.validation import prepare
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from auditline.testing.kafka_broker import LocalKafka

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "openlineage"
N = 6_000
BATCH = 200
CONCURRENCY = 16


def workload() -> list[bytes]:
    """N COMPLETE events shaped like the residency fixture, each its own run and datasets."""
    template = json.loads((FIXTURES / "spark" / "residency_breach_de_to_us.json").read_text())[-1]
    events = []
    for i in range(N):
        event = copy.deepcopy(template)
        event["run"]["runId"] = str(uuid.uuid4())
        for dataset in (*event["inputs"], *event["outputs"]):
            dataset["name"] = f"{dataset['name']}_{i % 500}"
        events.append(json.dumps(event).encode())
    return events


def settings_for(bootstrap: str, prefix: str, tmp: Path, instance: str) -> AuditlineSettings:
    return AuditlineSettings(
        kafka={"bootstrap_servers": bootstrap}, topic_prefix=prefix,
        producer={"service": "auditline-openlineage", "instance": instance},
        spool={"path": str(tmp / f"spool-{instance}")},
    )  # fmt: skip


def raw(bootstrap: str, prefix: str, tmp: Path, events: list[bytes]) -> tuple[float, float]:
    """Events/s and CPU µs per event of the ingest core in this process."""
    config = MappingConfig(inventory=load_inventory(FIXTURES / "inventory.yaml"))
    prepare()
    with AuditProducer(settings_for(bootstrap, prefix, tmp, "raw")) as producer:
        ingestor = Ingestor(producer, config)
        ingestor.ingest(events[:BATCH])  # warm: topics, schemas, caches
        assert producer.flush(60)
        began, cpu = time.perf_counter(), time.process_time()
        for start in range(0, N, BATCH):
            outcomes = ingestor.ingest(events[start : start + BATCH])
            assert all(o.accepted for o in outcomes), outcomes[0].reason
        assert producer.flush(120)
        took, cpu = time.perf_counter() - began, time.process_time() - cpu
    return N / took, cpu / N * 1e6


def service_env(bootstrap: str, prefix: str, tmp: Path, instance: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")}
    env.update({
        "AUDITLINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "AUDITLINE_TOPIC_PREFIX": prefix,
        "AUDITLINE_SPOOL__PATH": str(tmp / f"spool-{instance}"),
        "AUDITLINE_PRODUCER__INSTANCE": instance,
        "AUDITLINE_OPENLINEAGE__INVENTORY_PATH": str(FIXTURES / "inventory.yaml"),
    })  # fmt: skip
    return env


def started(command: list[str], env: dict[str, str], ready: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "auditline.cli", "openlineage", *command], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if ready in line:
            break
    else:
        raise RuntimeError(f"openlineage {command[0]} ended before it was ready")
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process


def http(bootstrap: str, prefix: str, tmp: Path, events: list[bytes]) -> dict[str, float]:
    port = free_port()
    env = service_env(bootstrap, prefix, tmp, "http")
    process = started(["serve", "--port", str(port)], env, "ready on")
    url = f"http://127.0.0.1:{port}/api/v1/lineage"
    try:
        asyncio.run(post(url, events[:BATCH]))  # warm
        server_cpu, client_cpu = cpu_seconds(process.pid), time.process_time()
        began = time.perf_counter()
        latencies = asyncio.run(post(url, events))
        took = time.perf_counter() - began
        server_cpu = cpu_seconds(process.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        process.terminate()
        process.wait(60)
    latencies.sort()
    return {
        "http_eps": N / took,
        "http_p50_ms": statistics.median(latencies) * 1000,
        "http_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "http_server_cpu_us_per_event": server_cpu / N * 1e6,
        "http_client_cpu_us_per_event": client_cpu / N * 1e6,
    }


async def post(url: str, events: list[bytes]) -> list[float]:
    queue = list(reversed(events))
    latencies: list[float] = []
    headers = {"Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            began = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as answer:
                assert answer.status == 201, await answer.text()
                await answer.read()
            latencies.append(time.perf_counter() - began)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(CONCURRENCY)))
    return latencies


def kafka(bootstrap: str, prefix: str, tmp: Path, events: list[bytes]) -> dict[str, float]:
    topic = f"{prefix}.openlineage.in"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for event in events:
        producer.produce(topic, event)
        producer.poll(0)
    assert producer.flush(60) == 0
    env = service_env(bootstrap, prefix, tmp, "kafka")
    before = os.times()  # children's CPU: the consumer's is what this run adds
    began = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "auditline.cli", "openlineage", "consume", "--idle-exit", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    took = time.perf_counter() - began - 3  # less the idle wait that ends it
    assert process.returncode == 0, process.stderr
    assert f"{N} consumed, {N} accepted" in process.stdout, process.stdout
    after = os.times()
    cpu = after.children_user + after.children_system - before.children_user
    cpu -= before.children_system
    return {"kafka_eps": N / took, "kafka_cpu_us_per_event": cpu / N * 1e6}


def evidence_count(bootstrap: str, prefix: str) -> int:
    topic = Catalogue(prefix).for_model(OpenLineageEvent).topic
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    metadata = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    total = 0
    for partition in metadata:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        total += high - low
    consumer.close()
    return total


def main() -> None:
    events = workload()
    with ExitStack() as stack:
        external = os.environ.get("AUDITLINE_TEST_KAFKA")
        bootstrap = external or stack.enter_context(LocalKafka()).bootstrap
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        figures: dict[str, float] = {}
        for name, path in (("raw", raw), ("http", http), ("kafka", kafka)):
            prefix = f"bench{int(time.time())}{name}"
            result = path(bootstrap, prefix, tmp, events)
            if isinstance(result, tuple):
                figures["raw_eps"], figures["raw_cpu_us_per_event"] = result
            else:
                figures.update(result)
            warm = BATCH if name in ("raw", "http") else 0
            assert evidence_count(bootstrap, prefix) == N + warm, name
    figures["ratio_http"] = figures["http_eps"] / figures["raw_eps"]
    figures["ratio_kafka"] = figures["kafka_eps"] / figures["raw_eps"]
    report("openlineage", figures, events=N)


if __name__ == "__main__":
    main()
