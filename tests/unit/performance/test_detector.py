"""The detector on synthetic streams: an accuracy drop opens episodes and the recovery closes
them; its state survives a JSON round trip; the embedded runner returns its alerts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from auditline.events import PerformanceAlert
from auditline.performance.config import PerformanceConfig, PerformanceSettings
from auditline.performance.degradation import Baseline
from auditline.performance.detector import PerformanceDetector
from auditline.testing.outcome_streams import T0, batch, outcome, single, stream, training_run

CONFIG = PerformanceConfig(horizon_seconds=7200, allowed_lateness_seconds=0)
ACCURACIES = [0.9] * 4 + [0.7] * 4 + [0.9] * 4


def detector(config: PerformanceConfig = CONFIG) -> PerformanceDetector:
    return PerformanceDetector(
        Baseline.from_training_run(training_run({"accuracy": 0.9, "auc": 0.9})), config
    )


def transitions(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [
        (a["state"], a["severity"], a["metric"], a["window_start"].strftime("%H")) for a in alerts
    ]


def test_an_accuracy_drop_opens_episodes_and_the_recovery_closes_them() -> None:
    found = detector()
    alerts = [a for e in stream(np.random.default_rng(3), ACCURACIES) for a in found.observe(e)]
    alerts += found.release(everything=True)
    assert transitions(alerts) == [
        ("opened", "medium", "accuracy", "04"), ("opened", "high", "accuracy", "04"),
        ("opened", "medium", "auc", "04"), ("opened", "high", "auc", "04"),
        ("closed", "medium", "accuracy", "09"), ("closed", "high", "accuracy", "09"),
        ("closed", "medium", "auc", "09"), ("closed", "high", "auc", "09"),
    ]  # fmt: skip
    opened = PerformanceAlert.model_validate({"envelope": training_run({}).envelope, **alerts[0]})
    assert opened.baseline == 0.9 and opened.outcomes == 1000 and opened.coverage == 1.0
    assert 300 < opened.label_delay_p50_s < 560  # exponential, mean 600 s: median 416 s
    assert found.open_episodes() == []
    reports = found.take_reports()
    assert len(reports) == len(ACCURACIES) and reports[0]["window_start"] == T0.isoformat()
    assert found.counts()["joined"] == 12_000


def test_a_json_round_trip_mid_stream_gives_the_same_alerts() -> None:
    events = list(stream(np.random.default_rng(4), ACCURACIES))
    whole = detector()
    expected = [a for e in events for a in whole.observe(e)] + whole.release(everything=True)
    first = detector()
    alerts = [a for e in events[:7_000] for a in first.observe(e)]
    state = json.loads(json.dumps(first.to_json()))
    again = PerformanceDetector.from_json(first.baseline, CONFIG, state)
    alerts += [a for e in events[7_000:] for a in again.observe(e)]
    alerts += again.release(everything=True)
    assert alerts == expected
    assert again.counts() == whole.counts()


def test_too_few_outcomes_are_not_judged_and_unmatched_predictions_lower_coverage() -> None:
    found = detector(CONFIG.model_copy(update={"min_outcomes": 10}))
    found.observe(batch("b", T0, [0.9] * 20))
    for row in range(5):  # wrong, but only five outcomes
        found.observe(outcome(T0 + timedelta(minutes=1), batch_id="b", row=row, label="0"))
    assert found.release(everything=True) == []
    (report,) = found.take_reports()
    assert report["coverage"] == 0.25 and report["accuracy"] == 0.0


def test_outcomes_beyond_the_horizon_and_late_predictions_are_counted_not_joined() -> None:
    found = detector()
    found.observe(single("p1", T0, score=0.8))
    found.observe(outcome(T0 + timedelta(hours=3), prediction_id="p1", label="1"))
    assert found.counts()["beyond_horizon"] == 1
    found.observe(single("p2", T0 + timedelta(minutes=5), score=0.8))  # window 00 judged
    assert found.counts()["late_predictions"] == 1


def test_the_runner_returns_performance_alerts_and_windows() -> None:
    from auditline.policy.engine import PolicyEngine
    from auditline.policy.model import load_policy
    from auditline.runner import EmbeddedRunner

    settings = PerformanceSettings(defaults=CONFIG.model_copy(update={"join_from": "training_run"}))
    runner = EmbeddedRunner(PolicyEngine(load_policy()), performance=settings)
    events = [training_run({"accuracy": 0.9}), *stream(np.random.default_rng(5), ACCURACIES)]
    result = runner.run_events(events)
    result = runner.finish_drift(result)
    assert [(a["state"], a["metric"]) for a in result.performance_alerts][:2] == [
        ("opened", "accuracy"), ("opened", "accuracy"),
    ]  # fmt: skip
    assert len(result.performance_windows) == len(ACCURACIES)
    assert result.performance_windows[0]["coverage"] == 1.0


@pytest.mark.parametrize(("join_from", "first_joined"), [("first_outcome", 0), ("never", None)])
def test_join_from_keeps_predictions_once_outcomes_come_or_never(
    join_from: str, first_joined: float | None
) -> None:
    from auditline.policy.engine import PolicyEngine
    from auditline.policy.model import load_policy
    from auditline.runner import EmbeddedRunner

    config = CONFIG.model_copy(update={"join_from": join_from, "min_outcomes": 1})
    runner = EmbeddedRunner(
        PolicyEngine(load_policy()), performance=PerformanceSettings(defaults=config)
    )
    early = batch("early", T0, [0.9])  # before any outcome of the version
    events = [training_run({"accuracy": 0.9}), early,
              outcome(T0 + timedelta(seconds=1), batch_id="early", row=0, label="1"),
              batch("later", T0 + timedelta(seconds=2), [0.8]),
              outcome(T0 + timedelta(seconds=3), batch_id="later", row=0, label="1")]  # fmt: skip
    result = runner.finish_drift(runner.run_events(events))
    windows = result.performance_windows
    if first_joined is None:
        assert windows == [] and runner.performance_detectors == {}
    else:  # the early batch was not kept: its outcome waited in vain, the later one joined
        assert [(w["predictions"], w["joined"]) for w in windows] == [(1.0, 1.0)]


def test_config_checks_tolerances_and_merges_them_over_the_defaults() -> None:
    config = PerformanceConfig.model_validate(
        {"tolerances": {"accuracy": {"medium": 0.02, "high": 0.04}}}
    )
    assert config.tolerances["accuracy"].medium == 0.02 and config.tolerances["mae"].medium == 0.2
    with pytest.raises(ValidationError, match="unknown metrics f1"):
        PerformanceConfig.model_validate({"tolerances": {"f1": {"medium": 0.1, "high": 0.2}}})
    with pytest.raises(ValidationError, match="high must be at least"):
        PerformanceConfig.model_validate({"tolerances": {"auc": {"medium": 0.2, "high": 0.1}}})
