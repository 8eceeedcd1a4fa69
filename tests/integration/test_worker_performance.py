"""Model quality in the worker on the real broker: a model trained with its accuracy reported,
scored batches and their outcomes from two producers, the outcomes out of order (some before
their prediction, the rest up to 2.5 s after it, a few sent twice), the accuracy dropped for a
few seconds, the worker kill -9ed and restarted mid-stream (every pair so far in its join state,
rebuilt from the table). The degradation alert opens and
closes, and every alerted window joined each of its predictions exactly once."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import Outcome, PerformanceAlert, PredictionBatch
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from tests.integration.test_worker import emit_pinned_copy, platform_settings, violations, worker
from tests.integration.test_worker_drift import predictions_per_window
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.worker]
SETTINGS = """\
defaults:
  join_from: training_run
  window_seconds: 2
  allowed_lateness_seconds: 0
  horizon_seconds: 30
  min_outcomes: 40
  close_m: 2
"""
ROWS = 40  # per batch, a batch every 0.25 s


def producer(bootstrap: str, prefix: str, tmp: Path, service: str) -> AuditProducer:
    return AuditProducer(
        AuditlineSettings(
            kafka={"bootstrap_servers": bootstrap}, topic_prefix=prefix,
            producer={"service": service, "instance": "i1"},
            spool={"path": str(tmp / f"{service}-spool"), "fsync": "never"},
        )
    )  # fmt: skip


def alerts(bootstrap: str, prefix: str) -> list[PerformanceAlert]:
    codec = SingleObjectCodec(Catalogue(prefix))
    found = read_topic(bootstrap, f"{prefix}.alerts.performance", 0, timeout=5)
    return [a for a in (codec.decode(m.value) for m in found) if isinstance(a, PerformanceAlert)]


def inputs(bootstrap: str, prefix: str, expected: int = 1) -> list[dict[str, Any]]:
    """The records on the model-quality stage's internal topic (``inputs`` of each message)."""
    topic = f"{prefix}-streams-performance-inputs"
    deadline, found = time.monotonic() + 90, []
    while time.monotonic() < deadline:
        messages = read_topic(bootstrap, topic, 1, timeout=30)
        found = [r for m in messages for r in json.loads(m.value)["inputs"]]
        if len(found) >= expected:
            break
        time.sleep(1)
    return found


def state_report(bootstrap: str, prefix: str) -> str:
    """What reached the model-quality stage and what its state says, for a failure."""
    kinds: dict[str, int] = {}
    for record in inputs(bootstrap, prefix):
        kinds[record["k"]] = kinds.get(record["k"], 0) + 1
    changelog = read_topic(bootstrap, f"{prefix}-streams-performance-state-changelog", 1, 30)
    metas = [m.value for m in changelog if m.key and json.loads(json.loads(m.key))[1:] == ["m"]]
    deleted = sum(1 for m in changelog if m.value is None)
    return (
        f"inputs by kind {kinds}; {len(changelog)} state records, {deleted} deletions; "
        f"last meta {metas[-1:]!r}"
    )


class Labels:
    """Outcomes of scored rows, sent in random order up to 2.5 s after their prediction; a
    tenth of them before it, and one in fifty twice."""

    def __init__(self, audit: AuditProducer, rng: np.random.Generator) -> None:
        self.audit, self.rng = audit, rng
        self.waiting: list[tuple[float, dict[str, Any]]] = []
        self.sent = 0

    def early(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send a tenth of ``bodies`` now (before their batch); the others wait."""
        first = self.rng.random(len(bodies)) < 0.1
        self.send([b for b, now in zip(bodies, first, strict=True) if now])
        due = time.monotonic() + self.rng.uniform(0.0, 2.5, len(bodies))
        self.waiting += [(d, b) for b, now, d in zip(bodies, first, due, strict=True) if not now]
        return bodies

    def send(self, bodies: list[dict[str, Any]]) -> None:
        if bodies:
            twice = [b for b in bodies if self.rng.random() < 0.02]
            self.audit.emit_many(Outcome, bodies + twice)
            self.sent += len(bodies) + len(twice)

    def tick(self, everything: bool = False) -> None:
        now = time.monotonic()
        due = [b for d, b in self.waiting if everything or d <= now]
        self.waiting = [(d, b) for d, b in self.waiting if not everything and d > now]
        self.send([due[i] for i in self.rng.permutation(len(due))])


def test_worker_joins_outcomes_once_across_a_kill_and_alerts_on_degradation(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    rng = np.random.default_rng(17)
    (tmp_path / "performance.yaml").write_text(SETTINGS)
    with AuditProducer(platform_settings(kafka_bootstrap, prefix, tmp_path)) as audit:
        with audit.training_run(model="churn", inputs=["ds"], location={"country": "DE"},
                                code_version="c1", purpose="analytics") as run:  # fmt: skip
            run.log_metrics(accuracy=0.9)
            run.set_output("1")
        emit_pinned_copy(audit)  # its violations show the worker has read the training run
        assert audit.flush(30)
    env = {"AUDITLINE_PERFORMANCE_PATH": str(tmp_path / "performance.yaml")}
    process = worker(kafka_bootstrap, prefix, tmp_path, **env)
    scoring = producer(kafka_bootstrap, prefix, tmp_path, "scoring")
    labels = Labels(producer(kafka_bootstrap, prefix, tmp_path, "labelling"), rng)
    found: list[PerformanceAlert] = []
    try:
        violations(kafka_bootstrap, prefix, 2)
        began, killed, number = time.monotonic(), False, 0
        while (elapsed := time.monotonic() - began) < 16:
            accuracy = 0.6 if 4 <= elapsed < 9 else 0.95
            scores = rng.uniform(0, 1, ROWS)
            said = scores >= 0.5
            truth = np.where(rng.random(ROWS) < accuracy, said, ~said)
            batch_id = f"b{number}"
            labels.early([
                {"model_name": "churn", "model_version": "1", "batch_id": batch_id, "row": row,
                 "label": "1" if truth[row] else "0"} for row in range(ROWS)
            ])  # fmt: skip
            scoring.emit(PredictionBatch, batch_id=batch_id, model_name="churn",
                         model_version="1", location={"country": "DE"}, count=ROWS,
                         scores=scores.tolist(), labels=["1" if s else "0" for s in said],
                         latency_ms=1.0)  # fmt: skip
            labels.tick()
            number += 1
            if elapsed >= 7 and not killed:  # mid-degradation: joins so far live in the table
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                process = worker(kafka_bootstrap, prefix, tmp_path, **env)
                killed = True
            time.sleep(0.25)
        labels.tick(everything=True)
        assert scoring.flush(30) and labels.audit.flush(30)
        # once every outcome reached the join (the watermark is the latest event time of
        # either kind), a batch 40 s ahead: it passes every window's horizon, all are judged
        # (the horizon is longer than the worker's outage, as it must be: a backlog of
        # predictions read ahead of the outcomes' would judge windows early)
        assert len(inputs(kafka_bootstrap, prefix, labels.sent + number)) >= labels.sent + number
        later = datetime.now(UTC) + timedelta(seconds=40)
        scoring.emit(PredictionBatch, event_time=later, batch_id="last", model_name="churn",
                     model_version="1", location={"country": "DE"}, count=1, scores=[0.9],
                     latency_ms=1.0)  # fmt: skip
        assert scoring.flush(30) and labels.audit.flush(30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = [a for a in alerts(kafka_bootstrap, prefix) if a.metric == "accuracy"]
            if {(a.state.value, a.severity.value) for a in found} >= {("closed", "high")}:
                break
            time.sleep(2)
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        scoring.close()
        labels.audit.close()
    by_id = {a.alert_id: a for a in found}
    windows = sorted((a.window_start.time().isoformat(), a.state.value, a.severity.value,
                      a.value, a.statistics.get("joined")) for a in by_id.values())  # fmt: skip
    say(f"accuracy alerts after a kill -9: {windows}")
    states = {(a.state.value, a.severity.value) for a in by_id.values()}
    if not {("opened", "high"), ("closed", "high")} <= states:
        say(state_report(kafka_bootstrap, prefix))
    assert {("opened", "high"), ("closed", "high")} <= states, windows
    for alert in by_id.values():
        sent = predictions_per_window(kafka_bootstrap, prefix, alert.window_start, alert.window_end)
        assert alert.statistics["predictions"] == sent, "a window lost or doubled predictions"
        assert alert.statistics["joined"] == sent, "an outcome was lost or joined twice"
        assert alert.coverage == 1.0 and alert.baseline == 0.9
    opened = next(
        a for a in by_id.values() if (a.state.value, a.severity.value) == ("opened", "high")
    )
    assert opened.value <= opened.threshold == 0.8 and opened.training_run_id == run.run_id
