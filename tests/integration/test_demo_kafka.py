"""`auditline demo --kafka` (issue 16 item 3): the platform's day through the real broker, with
`auditline worker` judging, `auditline sink` storing and `auditline alerts tail` printing, each a
process; the auditor's view is then asked of the sink's store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.test_demo import REGIME_RULES, TAMPERED

pytestmark = [pytest.mark.integration, pytest.mark.worker]


def test_the_demo_through_kafka_with_the_worker_the_sink_and_the_alert_service(
    kafka_bootstrap: str, tmp_path: Path, say: Callable[[str], None]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")}
    env |= {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    started = time.monotonic()
    demo = subprocess.run(
        [sys.executable, "-m", "auditline.cli", "demo", "--kafka", kafka_bootstrap],
        check=False, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=240,
    )  # fmt: skip
    took = time.monotonic() - started
    out = demo.stdout
    assert demo.returncode == 0, f"{demo.stderr}\n{out[-4000:]}"
    # the alert service's lines, as the worker raised them
    for rule in REGIME_RULES:
        assert f" violation {rule} " in out, rule
    assert re.search(r" drift \S+ opened: (gradual )?drift opened on tenure_months", out)
    assert re.search(r" drift \S+ closed: ", out)  # the 17:07 batch closed the last window
    assert f"integrity tampered: tampered: content does not match the hash it carries | stream {TAMPERED} at sequence 2" in out  # fmt: skip
    assert f"  integrity              {TAMPERED}\n" in out  # the stored alerts' summary
    # the auditor's view, read through the sink
    assert "ds:customers     2      trained_on  run:run-churn-4" in out
    assert "churn       4              DE       eu-central-1  2000" in out  # 1,920 + 17:07
    assert "ds:upi-payments-sg2  1      moved_to  ds:upi-payments" in out
    assert "EU-US    deny      serving" in out and "RES-PIN  deny      serving" in out
    assert f"anchors: BROKEN: {TAMPERED}\n" in out
    export = next(line for line in out.splitlines() if line.startswith("  export "))
    assert "AUDITLINE_TOPIC_PREFIX=auditline-demo-" in export
    assert f"AUDITLINE_KAFKA__BOOTSTRAP_SERVERS={kafka_bootstrap}" in export
    assert "\n  auditline console" in out
    assert out.rstrip().endswith(f"every stream intact except {TAMPERED}, whose tampering was "
                                 "detected")  # fmt: skip
    # the run's own folder: the store the sink released, and every process's log
    (run,) = (tmp_path / "data" / "auditline" / "demo" / "kafka").iterdir()
    assert run.name in export
    assert {p.name for p in (run / "logs").iterdir()} == {"worker.log", "sink.log",
                                                         "alerts-tail.log"}  # fmt: skip
    assert "sink stopped: " in (run / "logs" / "sink.log").read_text()
    assert not (run / "store" / "endpoint.json").exists()
    ready = next(line for line in out.splitlines() if line.startswith("worker ready after"))
    say(f"auditline demo --kafka: {took:.1f} s wall; {ready.split(';')[0]}")
