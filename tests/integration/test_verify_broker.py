"""`auditline verify --broker` on the real broker: a tail deleted from the store together with
every checkpoint after it is found against the checkpoints Kafka still holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditline.demo import DemoKeys, _bodies
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from tests.kafka_helpers import cli_env

pytestmark = pytest.mark.integration
DELETE_NEWEST = """
import sys
from auditline.settings import ClickHouseSettings
from auditline.sinks.store import connect
store = connect(ClickHouseSettings(dsn=f"chdb://{sys.argv[1]}", database="audit"))
for stream in ("svc/i1/predictions", "svc/i1/checkpoints"):  # newest event, newest checkpoint
    store.command(
        "DELETE FROM audit.audit_log WHERE stream = {s:String} AND sequence = "
        "(SELECT max(sequence) FROM audit.audit_log WHERE stream = {s:String})",
        {"s": stream}, mutations_sync=2,
    )
store.close()
"""
ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditline.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_a_deleted_tail_is_found_against_the_broker(
    kafka_bootstrap: str, tmp_path: Path, unique: str
) -> None:
    prefix, engine = f"t{unique}.auditline", tmp_path / "engine"
    keys = DemoKeys.make(tmp_path / "keys")
    env = cli_env(kafka_bootstrap, prefix, f"chdb://{engine}", "audit") | {
        "AUDITLINE_KEYRING_PATH": str(keys.keyring)
    }
    settings = AuditlineSettings(
        kafka={"bootstrap_servers": kafka_bootstrap}, topic_prefix=prefix,
        producer=keys.producer("svc", "i1") | {"transport": "kafka"},
        spool={"path": str(tmp_path / "spool"), "fsync": "never"},
    )  # fmt: skip
    with AuditProducer(settings) as producer:
        for model, body in _bodies():
            producer.emit(model, **body)
        assert producer.flush(60)
    sink = cli(env, "sink", "--idle-exit", "6")
    assert sink.returncode == 0, sink.stdout + sink.stderr
    assert cli(env, "verify", "--broker", "--settle", "0").returncode == 0

    deleting = subprocess.run(  # a process of its own: chDB opens one engine per process
        [sys.executable, "-c", DELETE_NEWEST, str(engine)], capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert deleting.returncode == 0, deleting.stderr

    alone = cli(env, "verify", "--settle", "0")
    assert alone.returncode == 0, alone.stderr  # the store alone looks intact (one checkpoint)
    found = cli(env, "verify", "--broker", "--settle", "0", "--format", "json")
    assert found.returncode == 1, found.stderr
    findings = {(f["finding"], f["stream"]) for f in map(json.loads, found.stdout.splitlines())}
    assert findings == {("truncated", "svc/i1/predictions"), ("vanished", "svc/i1/checkpoints")}
