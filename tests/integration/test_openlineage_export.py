"""`auditline openlineage export` as a process of its own, reading a real embedded store (owned by
this test process, read through its endpoint) and sending through the openlineage-python
client's real transports: HTTP to a local consumer that keeps what it is posted, Kafka to the
real broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiohttp import web
from auditline.sinks.migrate import migrate
from auditline.sinks.rows import COLUMNS, Located, rows_for
from auditline.sinks.store import Store, connect

from auditline.demo import FRANKFURT
from auditline.events import (
    ZERO_HASH,
    AssetDeclared,
    Envelope,
    Event,
    OpenLineageEvent,
    ProducerInfo,
)
from auditline.integrity.chain import seal
from auditline.openlineage.cli import SERVICE
from auditline.openlineage.export_cli import KINDS, Query, read_rows
from auditline.openlineage.validation import check
from auditline.settings import ClickHouseSettings
from tests.kafka_helpers import cli_env, create_topics, free_port, read_topic
from tests.unit.sinks.platform import T0, platform

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BRIDGE = "ol-bridge"  # an ingesting service under a name of its own: it stored OpenLineageEvents


def from_openlineage(service: str, minute: int, asset: str) -> list[Event]:
    """What an ingesting service stores for one OpenLineage event: the evidence, a declaration."""
    producer = ProducerInfo(service=service, instance="i1", location=FRANKFURT)
    bodies: list[tuple[type[Event], dict[str, Any]]] = [
        (OpenLineageEvent, {"event_type": "COMPLETE", "producer": "https://spark",
                            "schema_url": "https://openlineage.io", "digest": ZERO_HASH}),
        (AssetDeclared, {"asset_id": asset, "asset_kind": "dataset", "name": asset,
                         "owner": "lake", "classification": "personal", "location": FRANKFURT}),
    ]  # fmt: skip
    events, prev = [], ZERO_HASH
    for sequence, (model, body) in enumerate(bodies):
        envelope = Envelope(
            event_id=uuid4(), event_time=T0 + timedelta(minutes=minute), producer=producer,
            stream=f"{service}/i1", sequence=sequence, prev_hash=prev, hash=ZERO_HASH,
        )  # fmt: skip
        events.append(seal(model(envelope=envelope, **body)))
        prev = events[-1].envelope.hash
    return events


@pytest.fixture
def store(store_settings: ClickHouseSettings) -> Iterator[Store]:
    """The fixture platform (10 exportable events) and two events converted from OpenLineage."""
    store = connect(store_settings)  # this process owns the engine: the CLI reads through it
    migrate(store)
    events = [
        *platform(),
        *from_openlineage(SERVICE, 2, "s3://eu-lake/events/2026"),
        *from_openlineage(BRIDGE, 3, "s3://eu-lake/clicks"),
    ]
    rows = rows_for([Located(e, "t", 0, i) for i, e in enumerate(events)])
    for table, values in rows.tables.items():
        store.insert(table, COLUMNS[table], values)
    yield store
    store.close()


class Consumer:
    """An OpenLineage consumer's HTTP endpoint that keeps each body posted, or refuses them."""

    def __init__(self) -> None:
        self.port, self.refuse = free_port(), False
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.runner: web.AppRunner | None = None

    async def _lineage(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.refuse:
            return web.json_response({"error": "no such namespace"}, status=400)
        self.posts.append((request.path, dict(request.headers), body))
        return web.Response(status=201)

    def __enter__(self) -> Consumer:
        async def start() -> None:
            app = web.Application()
            app.router.add_post("/{path:.*}", self._lineage)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.posts]


def env_for(settings: ClickHouseSettings, bootstrap: str = "127.0.0.1:9") -> dict[str, str]:
    env = cli_env(bootstrap, "unused", settings.dsn, settings.database)
    return {k: v for k, v in env.items() if not k.startswith("OPENLINEAGE")}


def export(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditline.cli", "openlineage", "export", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def by_job(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["job"]["name"]: e for e in events if "job" in e}


def facet_location(dataset: dict[str, Any]) -> str:
    return str(dataset["facets"]["auditline"]["location"]["country"])


def test_export_posts_the_lineage_to_an_openlineage_consumer(
    store: Store, store_settings: ClickHouseSettings
) -> None:
    with Consumer() as consumer:
        done = export(env_for(store_settings), "--url", f"http://127.0.0.1:{consumer.port}")
    assert done.returncode == 0, done.stderr
    target = f"http://127.0.0.1:{consumer.port}/api/v1/lineage"
    assert done.stdout.splitlines() == [
        "openlineage: exported 10 events (3 DatasetEvent, 7 RunEvent) from 10 audit events "
        "(3 AssetDeclared, 2 DataMovement, 3 ModelDeployed, 2 TrainingRun) "
        f"to {target}; 2 converted from OpenLineage left out (--include-ingested)"
    ]
    assert {path for path, _, _ in consumer.posts} == {"/api/v1/lineage"}
    assert {h["Content-Type"] for _, h, _ in consumer.posts} == {"application/json"}
    events = consumer.events()
    for event in events:  # what the HttpTransport posted is valid OpenLineage, whole
        assert check(json.dumps(event)).notes == ()
    times = [e["eventTime"] for e in events]
    assert times == sorted(times)  # event-time order: declarations before what uses them
    datasets = {e["dataset"]["name"]: e["dataset"] for e in events if "dataset" in e}
    assert set(datasets) == {"raw", "other", "features"}  # no ingested asset
    assert facet_location(datasets["raw"]) == "DE"
    assert datasets["features"]["facets"]["auditline"]["location"]["region"] == "us-east-1"
    jobs = by_job(events)
    for target_asset, country in (("raw-us", "US"), ("raw-sg", "SG")):
        move = jobs[f"movement/copy/raw -> {target_asset}"]
        assert [facet_location(d) for d in (*move["inputs"], *move["outputs"])] == ["DE", country]
        assert move["job"]["facets"]["auditline"]["purpose"] == "analytics"
    assert jobs["deployment/dep-b"]["job"]["facets"]["auditline"]["location"]["country"] == "SG"
    assert [d["name"] for d in jobs["training/churn"]["outputs"]] == ["churn:2"]  # the last run


def test_export_filters_by_kind_and_time_keeps_ingested_events_when_asked_and_sends_a_key(
    store: Store, store_settings: ClickHouseSettings
) -> None:
    until = (T0 + timedelta(minutes=5)).isoformat()
    env = env_for(store_settings) | {"MARQUEZ_TOKEN": "s3cret"}
    with Consumer() as consumer:
        done = export(
            env, "--url", f"http://127.0.0.1:{consumer.port}", "--api-key-env", "MARQUEZ_TOKEN",
            "--kind", "AssetDeclared", "--until", until, "--include-ingested",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "exported 4 events (4 DatasetEvent)" in done.stdout
    assert {h["Authorization"] for _, h, _ in consumer.posts} == {"Bearer s3cret"}
    names = {(e["dataset"]["namespace"], e["dataset"]["name"]) for e in consumer.events()}
    assert names == {("auditline", "raw"), ("auditline", "other"),
                     ("s3://eu-lake", "events/2026"), ("s3://eu-lake", "clicks")}  # fmt: skip


def test_export_writes_one_event_a_line_to_a_file_or_to_standard_output(
    store: Store, store_settings: ClickHouseSettings, tmp_path: Path
) -> None:
    env, out = env_for(store_settings), tmp_path / "lineage.ndjson"
    since = (T0 + timedelta(minutes=1)).isoformat()  # after raw was declared
    written = export(env, "--file", str(out), "--kind", "DataMovement", "--since", since)
    assert written.returncode == 0, written.stderr
    assert written.stdout.startswith("openlineage: exported 2 events (2 RunEvent)")
    in_file = [json.loads(line) for line in out.read_text().splitlines()]
    for move in in_file:  # what raw's declaration says, though it is before --since
        assert move["inputs"][0]["facets"]["auditline"]["classification"] == "personal"
    shown = export(env, "--console", "--kind", "DataMovement", "--since", since)
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line) for line in shown.stdout.splitlines()] == in_file
    assert shown.stderr.startswith("openlineage: exported 2 events")  # stdout holds the events


def test_a_refusal_an_unreachable_consumer_and_a_missing_store_fail_in_one_line(
    store: Store, store_settings: ClickHouseSettings, tmp_path: Path
) -> None:
    env = env_for(store_settings)
    with Consumer() as consumer:
        consumer.refuse = True
        refused = export(env, "--url", f"http://127.0.0.1:{consumer.port}")
    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert line.startswith("auditline: error: http://127.0.0.1:")
    assert "refused an event: HTTP 400 Bad Request" in line and "(nothing was sent)" in line
    config = tmp_path / "openlineage.yml"  # no retries: the refused connection fails at once
    config.write_text(
        f"transport:\n  type: http\n  url: http://127.0.0.1:{free_port()}\n"
        "  retry: {total: 0, connect: 0, read: 0}\n"
    )
    down = export(env, "--transport-config", str(config))
    assert down.returncode == 3, down.stderr
    [line] = down.stderr.splitlines()
    assert "cannot reach http://127.0.0.1:" in line and "Connection refused" in line
    nowhere = {**env, "AUDITLINE_CLICKHOUSE__DSN": f"chdb://{tmp_path / 'none' / 'engine'}"}
    missing = export(nowhere, "--console")
    assert missing.returncode == 4 and len(missing.stderr.splitlines()) == 1
    assert missing.stderr.startswith("auditline: error: no embedded store at ")
    bad = export(env, "--console", "--since", "last tuesday")
    assert bad.returncode == 2 and "last tuesday is not an ISO time" in bad.stderr


def test_the_log_is_read_in_pages_each_event_once_in_time_order(store: Store) -> None:
    query = Query(KINDS, left_out=frozenset({SERVICE, BRIDGE}))
    whole = list(read_rows(store, query))
    assert list(read_rows(store, query, page=3)) == whole
    assert len(whole) == len({event_id for event_id, _, _ in whole}) == 10
    assert len(list(read_rows(store, Query(KINDS)))) == 12


def test_export_produces_to_a_kafka_topic(
    store: Store, store_settings: ClickHouseSettings, kafka_bootstrap: str, unique: str
) -> None:
    topic = f"t{unique}.openlineage"
    create_topics(kafka_bootstrap, [topic], partitions=1)
    done = export(env_for(store_settings, kafka_bootstrap), "--kafka-topic", topic)
    assert done.returncode == 0, done.stderr
    assert f"to Kafka topic {topic} at {kafka_bootstrap}" in done.stdout
    messages = read_topic(kafka_bootstrap, topic, expected=10)
    assert len(messages) == 10
    events = [json.loads(m.value) for m in messages]
    for event in events:
        assert check(json.dumps(event)).notes == ()
    keys = {m.key.decode() for m in messages}  # the transport's keys: a job's runs in order
    assert "dataset:auditline/raw" in keys and "run:auditline/training/churn" in keys
