"""OpenLineage in through the official client: HttpTransport against `auditline openlineage
serve`, KafkaTransport against the real broker and `auditline openlineage consume`; the worker
judges the ingested movements, the sink stores them in one graph with the SDK's events."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from auditline.sinks.migrate import migrate
from auditline.sinks.store import connect
from auditline.sinks.writer import Sink
from confluent_kafka import Producer
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import AssetDeclared, OpenLineageEvent
from auditline.producer import AuditProducer
from auditline.settings import ClickHouseSettings, SinkSettings
from tests.integration.test_worker import platform_settings, read_until, violations, worker
from tests.kafka_helpers import cli_env, free_port, read_topic

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "openlineage"
TOKEN = "s3cret-token"
BREACH = "spark/residency_breach_de_to_us.json"
FEEDS = (BREACH, "spark/cll_start_complete.json", "airflow/task_start_fail.json",
         "dbt/run_complete_models.json", "flink/streaming_start_running.json")  # fmt: skip


def fixture(path: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = json.loads((FIXTURES / path).read_text())
    return events


def ol_env(bootstrap: str, prefix: str, tmp: Path, **more: str) -> dict[str, str]:
    env = cli_env(bootstrap, prefix, f"chdb://{tmp / 'engine'}", "audit")
    env.update({
        "AUDITLINE_SPOOL__PATH": str(tmp / "ol-spool"), "AUDITLINE_PRODUCER__INSTANCE": "ol1",
        "AUDITLINE_OPENLINEAGE__INVENTORY_PATH": str(FIXTURES / "inventory.yaml"),
        "AUDITLINE_OPENLINEAGE__API_KEY": TOKEN, **more,
    })  # fmt: skip
    return env


@contextmanager
def serving(env: dict[str, str], tmp: Path) -> Iterator[str]:
    """`auditline openlineage serve` on a free port; yields its base URL once ready."""
    port = free_port()
    log = (tmp / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "auditline.cli", "openlineage", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "ready on" not in (tmp / "serve.log").read_text():
            assert process.poll() is None, (tmp / "serve.log").read_text()
            assert time.monotonic() < deadline, "the endpoint did not start"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, (tmp / "serve.log").read_text()


def http_transport(url: str) -> HttpTransport:
    return HttpTransport(
        HttpConfig(url=url, auth=ApiKeyTokenProvider({"apiKey": TOKEN}),
                   compression=HttpCompression.GZIP, timeout=30)
    )  # fmt: skip


def an_airflow_task_run(job: str) -> RunEvent:
    """What the Airflow provider builds with the client's classes: a task run and its datasets."""
    return RunEvent(
        eventType=RunState.COMPLETE, eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=str(uuid.uuid4())), job=Job(namespace="airflow-prod", name=job),
        producer="https://github.com/apache/airflow/tree/providers-openlineage/2.20.3",
        inputs=[InputDataset(namespace="s3://eu-data-customers", name="crm/customers")],
        outputs=[OutputDataset(namespace="s3://eu-data-reports", name="crm/weekly")],
    )  # fmt: skip


@pytest.mark.worker
def test_http_transport_events_are_judged_by_the_worker_and_stored_in_one_graph(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    crm = "crm://eu/customers-master"
    with AuditProducer(platform_settings(kafka_bootstrap, prefix, tmp_path)) as sdk:
        sdk.emit(AssetDeclared, asset_id=crm, asset_kind="dataset", name="customers master",
                 owner="crm", classification="personal", location={"country": "DE"})  # fmt: skip
        sdk.emit(AssetDeclared, asset_id="s3://eu-data-customers/crm/customers",
                 asset_kind="dataset", name="customers", owner="crm", classification="personal",
                 location={"provider": "aws", "region": "eu-central-1"},
                 derived_from=[crm])  # fmt: skip
        assert sdk.flush(30)
    env = ol_env(kafka_bootstrap, prefix, tmp_path)
    process = worker(kafka_bootstrap, prefix, tmp_path)
    try:
        with serving(env, tmp_path) as url:
            refused = requests.post(f"{url}/api/v1/lineage", data=b"{}", timeout=10)
            assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
            bad = requests.post(f"{url}/api/v1/lineage", data=b'{"eventTime": "x"}',
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)  # fmt: skip
            assert bad.status_code == 400 and bad.json()["error"]
            transport = http_transport(url)
            sent = 0
            for path in FEEDS:
                for event in fixture(path):
                    transport.emit(event)  # type: ignore[arg-type]  # the client posts dicts as is
                    sent += 1
            OpenLineageClient(transport=transport).emit(an_airflow_task_run("weekly.report"))
            sent += 1
        run_id = str(fixture(BREACH)[-1]["run"]["runId"])  # type: ignore[index]
        found = read_until(
            lambda: violations(kafka_bootstrap, prefix, 1),
            lambda vs: any(v.facts.get("trace_id") == run_id and v.rule_id == "RES-PIN"
                           for v in vs),
            timeout=120,
        )  # fmt: skip
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    breach = [v for v in found if v.facts.get("trace_id") == run_id]
    say(f"openlineage http: {sent} events; violations on the breach run: "
        f"{sorted({v.rule_id for v in breach})}")  # fmt: skip
    assert {"RES-PIN", "EU-US"} <= {v.rule_id for v in breach}
    store_and_walk(kafka_bootstrap, prefix, tmp_path, sent, crm)


def store_and_walk(bootstrap: str, prefix: str, tmp: Path, sent: int, crm: str) -> None:
    """The sink stores every event; lineage walks cross SDK and OpenLineage nodes."""
    settings = platform_settings(bootstrap, prefix, tmp).model_copy(
        update={
            "clickhouse": ClickHouseSettings(dsn=f"chdb://{tmp / 'engine'}", database="audit"),
            "sink": SinkSettings(group_id=f"sink-{prefix}", batch_max_wait_ms=200),
        }
    )
    store = connect(settings.clickhouse)
    migrate(store)
    sink = Sink(settings, store)
    sink.run(idle_exit_s=8)
    sink.close()
    _, [(evidence,)] = store.rows(
        "SELECT count() FROM audit.audit_log WHERE kind = 'OpenLineageEvent'"
    )
    assert evidence == sent
    _, columns = store.rows("SELECT count() FROM audit.column_lineage FINAL")
    assert columns[0][0] > 0
    store.close()
    env = cli_env(bootstrap, prefix, f"chdb://{tmp / 'engine'}", "audit")
    walked = subprocess.run(
        [sys.executable, "-m", "auditline.cli", "lineage", "upstream",
         "s3://us-data-marketing/exports/customers_daily", "--format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert walked.returncode == 0, walked.stderr
    walk = {row["node"]: row for row in map(json.loads, walked.stdout.splitlines())}
    run = "run:01932f50-0a11-7b22-8c33-d44e55f66a77"
    assert walk[run]["edge"] == "wrote"  # the Spark run wrote the US copy
    assert walk["s3://eu-data-customers/crm/customers"]["edge"] in {"moved_to", "read_by"}
    assert walk[crm]["edge"] == "derived_from"  # and on, into what the SDK declared


def test_kafka_transport_events_are_ingested_and_bad_ones_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path, unique: str
) -> None:
    prefix = f"t{unique}.auditline"
    topic = f"{prefix}.openlineage.in"
    transport = KafkaTransport(
        KafkaConfig(config={"bootstrap.servers": kafka_bootstrap, "acks": "all"}, topic=topic)
    )
    sent = 0
    for path in FEEDS:
        for event in fixture(path):
            transport.emit(event)  # type: ignore[arg-type]
            sent += 1
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(topic, b"not an OpenLineage event")
    assert raw.flush(30) == 0
    env = ol_env(kafka_bootstrap, prefix, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "auditline.cli", "openlineage", "consume", "--idle-exit", "5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{sent + 1} consumed, {sent} accepted, 1 dead-lettered" in done.stdout
    codec = SingleObjectCodec(Catalogue(prefix))
    evidence = [codec.decode(m.value) for m in read_topic(
        kafka_bootstrap, Catalogue(prefix).for_model(OpenLineageEvent).topic, sent)]  # fmt: skip
    assert len(evidence) == sent
    [dead] = read_topic(kafka_bootstrap, f"{prefix}.deadletter", 1)
    assert dead.headers["reason"] and dead.headers["source_topic"] == topic.encode()
