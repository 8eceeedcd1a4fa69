"""`auditline evidence` is complete by construction (issue 11 item 2): for two models sharing a
store, each bundle holds exactly the decisions the detectors made on its own lineage, every hop
kind included (copy, training run `started`, serving, prediction), and none of the other's."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from auditline.sinks.demo import _load
from auditline.sinks.evidence import evidence, to_html, to_markdown
from auditline.sinks.queries import Provenance
from auditline.sinks.store import Store, connect
from auditline.sinks.verification import VerifyOptions

from auditline.cli import main
from auditline.demo import (
    ACME_EU,
    ACME_US,
    FRANKFURT,
    VIRGINIA,
    DemoKeys,
    emit_and_verify,
    judge_and_alert,
)
from auditline.events import AssetDeclared, DataMovement, ModelDeployed, Prediction, TrainingRun
from auditline.integrity.keyring import read_keyring
from auditline.policy.decisions import Decision
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings, ClickHouseSettings

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # after the demo story: judged in time order


def emit_decoy(broker: InProcessBroker, keys: DemoKeys) -> None:
    """A second model, other:1, on its own pinned dataset: its violations are not churn's."""
    with tempfile.TemporaryDirectory() as spool:
        settings = AuditlineSettings(
            producer=keys.producer("decoy", "d1"), spool={"path": spool, "fsync": "never"}
        )
        with AuditProducer(settings, transport=InProcessTransport(broker)) as p:
            p.emit(AssetDeclared, event_time=T0, asset_id="ds:decoy", asset_kind="dataset", name="decoy",
                   owner="t", classification="personal", location=FRANKFURT, residency=("DE",))  # fmt: skip
            p.emit(TrainingRun, event_time=T0 + timedelta(minutes=1), run_id="run-d", status="started", model_name="other",
                   inputs=("ds:decoy",), code_version="x", location=VIRGINIA, purpose="p")  # fmt: skip
            p.emit(TrainingRun, event_time=T0 + timedelta(minutes=2), run_id="run-d", status="completed", model_name="other",
                   model_version="1", inputs=("ds:decoy",), code_version="x", location=VIRGINIA,
                   purpose="p")  # fmt: skip
            p.emit(ModelDeployed, event_time=T0 + timedelta(minutes=3), deployment_id="dep-d", model_name="other", model_version="1",
                   status="deployed", location=VIRGINIA)  # fmt: skip
            p.emit(Prediction, event_time=T0 + timedelta(minutes=4), prediction_id="pd", model_name="other", model_version="1",
                   location=VIRGINIA, subject_jurisdiction="DE", score=0.1, latency_ms=1.0)  # fmt: skip
            p.emit(DataMovement, event_time=T0 + timedelta(minutes=5), asset_id="ds:decoy", operation="copy", source=FRANKFURT,
                   destination=VIRGINIA, records=1, bytes=1, purpose="p", exporter=ACME_EU,
                   importer=ACME_US)  # fmt: skip


def emit_sharer(broker: InProcessBroker, keys: DemoKeys) -> None:
    """shared:1, trained on churn's US copy too: its decisions carry churn's copy event in their
    evidence, and still are not churn's."""
    with tempfile.TemporaryDirectory() as spool:
        settings = AuditlineSettings(
            producer=keys.producer("sharer", "s1"), spool={"path": spool, "fsync": "never"}
        )
        with AuditProducer(settings, transport=InProcessTransport(broker)) as p:
            p.emit(TrainingRun, event_time=T0, run_id="run-s", status="completed",
                   model_name="shared",
                   model_version="1", inputs=("ds:customers-us",), code_version="x",
                   location=VIRGINIA, purpose="churn-analytics")  # fmt: skip
            p.emit(ModelDeployed, event_time=T0 + timedelta(minutes=1), deployment_id="dep-s",
                   model_name="shared", model_version="1",
                   status="deployed", location=VIRGINIA)  # fmt: skip


@pytest.fixture
def platform(
    store_settings: ClickHouseSettings, tmp_path: Path
) -> Iterator[tuple[Store, list[Decision], dict[str, str], DemoKeys]]:
    keys = DemoKeys.make(tmp_path / "keys")
    ok, broker = emit_and_verify(io.StringIO(), keys)
    emit_decoy(broker, keys)
    emit_sharer(broker, keys)
    decisions = judge_and_alert(broker, keys, io.StringIO())
    store = connect(store_settings)
    stored, expected = _load(store, broker)
    assert ok and stored == expected
    _, rows = store.rows(
        f"SELECT toString(event_id), producer_service FROM `{store.database}`.audit_log"
    )
    yield store, decisions, dict(rows), keys
    store.close()


def violations(bundle: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(v["rule_id"], v["hop"], v["event"]) for v in bundle["violations"]}


def test_each_bundle_has_exactly_its_lineage_decisions(
    platform: tuple[Store, list[Decision], dict[str, str], DemoKeys],
) -> None:
    store, decisions, service_of, keys = platform
    provenance = Provenance(store)

    def owned(d: Decision, model: str) -> bool:
        service = service_of[d.subject_event_id]
        if model == "shared:1":  # its own events, and churn's copy it was trained on
            return service == "sharer" or (service, d.facts.get("hop")) == (
                "demo-platform",
                "movement",
            )
        return service == {"churn:3": "demo-platform", "other:1": "decoy"}[model]

    shared_hops = {
        d.facts.get("hop") for d in decisions if service_of[d.subject_event_id] == "sharer"
    }
    assert shared_hops == {"training", "serving"}  # the case the evidence clause got wrong
    for model in ("churn:3", "other:1", "shared:1"):
        expected = {
            (d.rule_id, d.facts.get("hop", ""), d.subject_event_id)
            for d in decisions
            if owned(d, model)
        }
        bundle = evidence(provenance, model, VerifyOptions(read_keyring(keys.keyring), True))
        assert violations(bundle) == expected, model
        assert all(check["ok"] for check in bundle["chain_verification"])
    churn = evidence(provenance, "churn:3")
    hops = {hop for _, hop, _ in violations(churn)}
    assert hops == {"movement", "training", "serving", "prediction", "prediction-subject"}
    started = next(t for t in churn["training"] if t["status"] == "started")
    assert started["run_id"] == "run-42"  # every run status is in the bundle
    assert len(churn["training"]) == 2


def test_markdown_reads_as_a_report(
    platform: tuple[Store, list[Decision], dict[str, str], DemoKeys],
) -> None:
    store, _, _, keys = platform
    options = VerifyOptions(read_keyring(keys.keyring), True)
    text = to_markdown(evidence(Provenance(store), "churn:3", options))
    assert text.startswith("# Evidence: model:churn:3\n")
    assert "## Violations\n\n| rule_id | decision | severity | hop |" in text
    assert "{" not in text and "None" not in text and "['" not in text  # no JSON, no reprs
    assert "| ds:customers | personal | EEA | DE, FR | DE | DE aws eu-central-1 |" in text
    assert "all intact" in text


def test_unknown_and_malformed_versions_are_errors(
    platform: tuple[Store, list[Decision], dict[str, str], DemoKeys],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["evidence", "nope:1"]) == 4
    assert "no model version nope:1" in capsys.readouterr().err
    assert main(["evidence", "readmit"]) == 2
    assert "give NAME:VERSION" in capsys.readouterr().err
    assert main(["evidence", "churn:3"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert (
        bundle["transfers"][0]["when"].endswith("Z") or "+00:00" in bundle["transfers"][0]["when"]
    )


def test_html_is_one_page_and_stored_text_is_never_markup(
    platform: tuple[Store, list[Decision], dict[str, str], DemoKeys],
) -> None:
    store, _, _, keys = platform
    bundle = evidence(Provenance(store), "churn:3", VerifyOptions(read_keyring(keys.keyring), True))
    bundle["sources"][0]["asset_id"] = "<script>alert(1)</script> | x"
    page = to_html(bundle)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<table>") == 7  # sections with entries: all but drift and integrity


def test_data_and_model_quality_alerts_are_in_their_own_versions_bundle(
    platform: tuple[Store, list[Decision], dict[str, str], DemoKeys],
) -> None:
    from auditline.sinks.rows import COLUMNS, Located, rows_for

    from auditline.events import PerformanceAlert
    from tests.unit.alerting.samples import T0, envelope, quality

    store = platform[0]
    performance = {
        "state": "opened", "severity": "high", "model_name": "churn", "model_version": "3",
        "metric": "accuracy", "value": 0.71, "baseline": 0.86, "threshold": 0.76,
        "window_start": T0, "window_end": T0, "outcomes": 800, "coverage": 0.93,
        "label_delay_p50_s": 3600.0, "training_run_id": "run-42",
    }  # fmt: skip
    events = [
        quality(),
        quality().model_copy(update={"model_name": "other", "model_version": "1"}),
        PerformanceAlert(envelope=envelope("w/1/alerts.performance"), alert_id="p-1", **performance),
        PerformanceAlert(envelope=envelope("w/1/alerts.performance"), alert_id="p-2",
                         **{**performance, "model_name": "other", "model_version": "1"}),
    ]  # fmt: skip
    rows = rows_for([Located(e, "t", 0, 60_000 + i) for i, e in enumerate(events)])
    for table, values in rows.tables.items():
        store.insert(table, COLUMNS[table], values)
    bundle = evidence(Provenance(store), "churn:3")
    assert [(q["feature"], q["check"]) for q in bundle["quality_alerts"]] == [("tenure", "missing")]
    assert [(p["metric"], p["value"]) for p in bundle["performance_alerts"]] == [("accuracy", 0.71)]
    text = to_markdown(bundle)
    assert "- data-quality alerts: 1" in text and "## Model-quality alerts (outcomes)" in text
    assert "| opened | high | accuracy | 0.71 | 0.86 |" in text
