"""`auditline demo` as a new user runs it (issue 16 item 3): a multi-region platform whose
violations of several regimes, drift alert and integrity alert come from the real detectors,
then the auditor's view, every follow-up command working as printed, and the console command."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from auditline.demo import DemoKeys
from auditline.demoplatform import serving

REGIME_RULES = {"RES-PIN", "EU-3RD", "EU-ART9", "EU-US", "UK-US", "CN-ASSESS", "CN-CONTRACT",
                "RU-LOCAL", "RU-NOTIFY", "IN-PAY", "JP-XFER", "PUR-COMPAT"}  # fmt: skip
TAMPERED = "in-payments/mum-1/movements"


def test_the_platform_run_raises_real_alerts_of_every_kind(tmp_path: Path) -> None:
    from auditline.demoplatform.run import run_platform

    out = io.StringIO()
    run = run_platform(DemoKeys.make(tmp_path), out)
    assert run.delivered
    fired = run.fired
    assert {d.rule_id for d in fired.decisions} >= REGIME_RULES
    # lawful copies raise nothing: EU->UK, EU->US (DPF), UK->DE, UK->IN (IDTA), RU->DE, JP->DE
    lawful = {"ds:marketing-uk", "ds:marketing-us", "ds:uk-patients-de", "ds:uk-patients-in",
              "ds:ru-subscribers-de", "ds:jp-members-de", "ds:upi-payments-hyd"}  # fmt: skip
    judged = {getattr(fired.events.get(d.subject_event_id), "target_asset_id", None)
              for d in fired.decisions}  # fmt: skip
    assert not lawful & judged
    drift = {(a["feature"], a["state"]) for a in fired.drift}
    assert {("tenure_months", "opened"), ("tenure_months", "closed")} <= drift
    assert run.tampered_stream == TAMPERED
    assert {(f.stream, str(f.kind)) for f in fired.findings} == {(TAMPERED, "tampered")}
    text = out.getvalue()
    assert "DRIFT opened" in text and "DRIFT closed" in text
    assert "INTEGRITY tampered" in text and TAMPERED in text
    assert "EU GDPR chapter V" in text and "China PIPL / CAC" in text


def test_the_kafka_run_names_the_findings_the_worker_did_not_raise() -> None:
    from auditline.demoplatform.kafka import Outcome
    from auditline.demoplatform.show import StoredAlerts

    rules = tuple((rule, "deny", 1) for rule in sorted(REGIME_RULES | {"EU-ADEQ"}))
    drift = ({"state": "opened", "severity": "high", "feature": "tenure_months",
              "window_end": serving.SERVING_START},)  # fmt: skip
    outcome = Outcome(TAMPERED, delivered=True, produced=93, stored=93, view_ok=True,
                      alerts=StoredAlerts(rules[1:], drift, (TAMPERED,)))  # fmt: skip
    assert outcome.missing == [f"violations of {rules[0][0]}", "a drift episode closed"]
    assert not outcome.ok
    assert "  China PIPL / CAC       CN-CONTRACT deny x1" in outcome.alerts.summary()
    complete = StoredAlerts(rules, (*drift, {**drift[0], "state": "closed"}), (TAMPERED,))
    assert Outcome(TAMPERED, True, 93, 93, True, complete).ok
    assert not Outcome(TAMPERED, True, 93, 92, True, complete).ok  # the sink missed one


def test_the_shipped_model_is_the_documented_logistic_regression() -> None:
    np = pytest.importorskip("numpy")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(serving.MODEL_FILE), providers=["CPUExecutionProvider"])
    rows = np.array([[24, 60, 1], [2, 90, 5], [70, 30, 0]], dtype=np.float32)
    weights, bias = np.array([-0.06, 0.015, 0.45]), -0.8
    expected = 1 / (1 + np.exp(-(rows @ weights + bias)))
    scores = session.run(None, {"features": rows})[0][:, 0]
    assert np.allclose(scores, expected, atol=1e-6)


def test_the_demo_and_its_printed_follow_ups(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")}
    env |= {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    cli = [sys.executable, "-m", "auditline.cli"]
    demo = subprocess.run(
        [*cli, "demo"], check=False, env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout
    for rule in REGIME_RULES:
        assert f" {rule} " in out, rule
    assert "DRIFT opened" in out and "DRIFT closed" in out
    assert "INTEGRITY tampered" in out and f"stream {TAMPERED}, sequence 2" in out
    assert f"anchors: BROKEN: {TAMPERED}\n" in out
    assert "ds:customers     2      trained_on  run:run-churn-4" in out  # provenance answers
    assert "churn       4              DE       eu-central-1  1920" in out
    assert "  auditline console" in out
    assert out.rstrip().endswith(f"every stream intact except {TAMPERED}, whose tampering was "
                                 "detected")  # fmt: skip
    assert (tmp_path / "data" / "auditline" / "clickhouse").is_dir()  # the per-user default
    lines = out.split("Try it yourself on the demo's store and keys:\n", 1)[1].splitlines()
    export = lines[0].strip().removeprefix("export ")
    env |= dict(pair.split("=", 1) for pair in shlex.split(export))
    commands = [line.strip() for line in lines[1:] if line.startswith("  auditline ")]
    commands = [c for c in commands if not c.startswith("auditline console")]  # serves forever
    assert len(commands) == 7
    outputs = {}
    for command in commands:
        done = subprocess.run(
            [*cli, *shlex.split(command)[1:]], check=False, env=env, capture_output=True, text=True,
            cwd=tmp_path,
        )  # fmt: skip
        expected = 1 if command == "auditline verify" else 0  # the tampered stream
        assert done.returncode == expected, f"{command}: {done.stderr}"
        outputs[" ".join(command.split()[1:3])] = done.stdout + done.stderr
    assert "| RES-PIN | deny | high | serving |" in outputs["evidence churn:4"]
    assert TAMPERED in outputs["verify"]
    assert "ds:customers" in outputs["lineage upstream"]
    assert "ds:upi-payments-sg2" in outputs["lineage downstream"]
    assert "IN-PAY" in outputs[next(k for k in outputs if k.startswith("sql"))]
