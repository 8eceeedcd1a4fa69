"""Drift in the worker on the real broker: a model trained with profiles, predictions through
the SDK's ONNX wrapper, a shift injected, the worker kill -9ed and restarted mid-stream; the
DriftAlerts open and close, and each alert's window count equals the predictions in its window
(nothing lost or counted twice across the restart)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import DriftAlert, PredictionBatch
from auditline.onnx import AuditedModel
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from streams.drift import partials_in
from tests.integration.test_worker import emit_pinned_copy, platform_settings, violations, worker
from tests.kafka_helpers import read_topic
from tests.unit.test_onnx import logistic_model

pytestmark = [pytest.mark.integration, pytest.mark.worker]
FEATURES = ["f0", "f1", "f2"]
DRIFT_SETTINGS = """\
defaults:
  window_seconds: 2
  allowed_lateness_seconds: 0
  min_window_count: 50
  close_m: 2
"""


def train(audit: AuditProducer, path: Path, rng: np.random.Generator) -> str:
    rows = rng.normal(size=(5_000, 3))
    scores = (1 / (1 + np.exp(-(rows @ np.array([0.5, -1.0, 2.0]) + 0.1)))).tolist()
    with audit.training_run(model="churn", inputs=["ds"], location={"country": "DE"},
                            code_version="c1", purpose="analytics") as run:  # fmt: skip
        run.profile_features({name: rows[:, i].tolist() for i, name in enumerate(FEATURES)})
        run.profile_predictions(scores)
        run.set_output("1", path)
    return run.run_id


def drift_alerts(bootstrap: str, prefix: str) -> list[DriftAlert]:
    codec = SingleObjectCodec(Catalogue(prefix))
    found = read_topic(bootstrap, f"{prefix}.alerts.drift", 0, timeout=5)
    return [a for a in (codec.decode(m.value) for m in found) if isinstance(a, DriftAlert)]


def predictions_per_window(bootstrap: str, prefix: str, start: datetime, end: datetime) -> int:
    codec = SingleObjectCodec(Catalogue(prefix))
    total = 0
    for message in read_topic(bootstrap, f"{prefix}.predictions", 1, timeout=30):
        event = codec.decode(message.value)
        if isinstance(event, PredictionBatch) and start <= event.envelope.event_time < end:
            total += event.count
    return total


def partials_report(bootstrap: str, prefix: str, start: datetime, end: datetime) -> str:
    """Which prediction records of a window reached the drift stage, and how often."""
    codec = SingleObjectCodec(Catalogue(prefix))
    in_window = [m.offset for m in read_topic(bootstrap, f"{prefix}.predictions", 1, timeout=30)
                 if start <= codec.decode(m.value).envelope.event_time < end]  # fmt: skip
    partials = read_topic(bootstrap, f"{prefix}-streams-drift-partials", 1, timeout=30)
    seen = [(p.offset, partial["offset"]) for p in partials for partial in partials_in(p.value)]
    sources = [source for _, source in seen]
    return (
        f"window {start.time()}-{end.time()}: prediction offsets {in_window}; "
        f"missing from the partials {sorted(set(in_window) - set(sources))}; "
        f"partials (partial offset, source offset) {seen}"
    )


def test_worker_opens_and_closes_drift_alerts_across_a_kill(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    rng = np.random.default_rng(9)
    (tmp_path / "drift.yaml").write_text(DRIFT_SETTINGS)
    path = logistic_model(tmp_path / "churn.onnx")
    with AuditProducer(platform_settings(kafka_bootstrap, prefix, tmp_path)) as audit:
        run_id = train(audit, path, rng)
        emit_pinned_copy(audit)  # its violations show the worker has read the training run
        assert audit.flush(30)
    env = {"AUDITLINE_DRIFT_PATH": str(tmp_path / "drift.yaml")}
    process = worker(kafka_bootstrap, prefix, tmp_path, **env)
    scoring = AuditProducer(
        AuditlineSettings(
            kafka={"bootstrap_servers": kafka_bootstrap}, topic_prefix=prefix,
            producer={"service": "scoring", "instance": "s1"},
            spool={"path": str(tmp_path / "scoring-spool"), "fsync": "never"},
        )
    )  # fmt: skip
    model = AuditedModel(path, producer=scoring, model="churn", version="1",
                         location={"country": "DE"}, feature_names=FEATURES)  # fmt: skip
    try:
        violations(kafka_bootstrap, prefix, 2)
        began = time.monotonic()
        killed = False
        while (elapsed := time.monotonic() - began) < 14:
            shift = 2.0 if 3 <= elapsed < 7 else 0.0  # f0 moves by 2 sd for 4 seconds
            model.predict_batch(rng.normal(size=(50, 3)) + np.array([shift, 0, 0]))
            if elapsed >= 5 and not killed:  # mid-shift: the windows so far live in the table
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                process = worker(kafka_bootstrap, prefix, tmp_path, **env)
                killed = True
            time.sleep(0.1)
        assert scoring.flush(30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            alerts = [a for a in drift_alerts(kafka_bootstrap, prefix) if a.feature == "f0"]
            if {a.state.value for a in alerts} >= {"opened", "closed"}:
                break
            time.sleep(2)
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        scoring.close()
    by_id = {a.alert_id: a for a in alerts}
    states = sorted({(a.state.value, a.severity.value) for a in by_id.values()})
    say(f"drift alerts for f0 after a kill -9: {states}")
    windows = sorted((a.window_start.time().isoformat(), a.state.value, a.severity.value,
                      a.window_count) for a in by_id.values())  # fmt: skip
    assert ("opened", "high") in states and ("closed", "high") in states, windows
    for alert in by_id.values():
        assert alert.training_run_id == run_id
        sent = predictions_per_window(kafka_bootstrap, prefix, alert.window_start, alert.window_end)
        if alert.window_count != sent:
            say(partials_report(kafka_bootstrap, prefix, alert.window_start, alert.window_end))
        assert alert.window_count == sent, "a window lost or double-counted predictions"
    opened = next(a for a in by_id.values() if a.state.value == "opened")
    assert opened.window_start >= datetime.fromtimestamp(0, UTC)
    assert opened.statistic == "psi" and opened.value >= opened.threshold
