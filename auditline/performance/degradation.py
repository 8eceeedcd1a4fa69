"""Degradation against the training run (pure): a judged window's metrics against the metrics
the ``TrainingRun`` reported, with drift's alert episodes.

Baselines are the training run's ``metrics`` of the names ``accuracy``, ``precision``,
``recall``, ``auc`` (higher is better) and ``mae``, ``rmse`` (lower is better); other keys are
ignored, and a metric without a baseline is reported but never alerted on. A metric is judged in
a window when it rests on at least ``min_outcomes`` pairs (``WindowMetrics.metrics``). It alerts
at ``medium`` (or ``high``) when it degrades by at least its ``Tolerance``: for higher-is-better
metrics an absolute drop (``baseline - value >= 0.05``), for MAE and RMSE a rise relative to the
baseline (``value >= baseline * 1.2``; a baseline of 0 or less cannot be exceeded by a share and
is not judged). ``threshold`` is the value at which it alerts at that severity.

Episodes, one per (metric, severity), are ``auditline.drift.episodes.Episodes``: opened after
``open_k`` of the last ``open_n`` judged windows, closed after ``close_m`` judged windows in a
row without; an open one is held while the degradation is at least ``close_ratio`` of its
level's tolerance (hysteresis), so a metric hovering at its threshold is one episode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditline.drift.episodes import Episode, Episodes, FeatureResult, Transition, utc
from auditline.drift.episodes import alert_id as make_id
from auditline.events import RunStatus, TrainingRun
from auditline.performance.config import HIGHER_IS_BETTER, METRICS, PerformanceConfig


class BaselineError(ValueError):
    """The training run cannot be a baseline (not completed, or no model version)."""


@dataclass(frozen=True)
class Baseline:
    model_name: str
    model_version: str
    training_run_id: str
    metrics: dict[str, float]  # of METRICS only

    @classmethod
    def from_training_run(cls, run: TrainingRun) -> Baseline:
        if run.status != RunStatus.COMPLETED or run.model_version is None:
            raise BaselineError(f"training run {run.run_id} did not complete a model version")
        known = {k: v for k, v in run.metrics.items() if k in METRICS}
        return cls(run.model_name, run.model_version, run.run_id, known)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model_name, "version": self.model_version,
            "run": self.training_run_id, "metrics": dict(self.metrics),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        metrics = {str(k): float(v) for k, v in data["metrics"].items()}
        return cls(data["model"], data["version"], data["run"], metrics)


def degradation(metric: str, value: float, baseline: float) -> float:
    """How far the metric is worse than its baseline: the drop, or the relative rise."""
    if metric in HIGHER_IS_BETTER:
        return baseline - value
    return value / baseline - 1.0


def bar(metric: str, level: str, baseline: float, config: PerformanceConfig) -> float:
    """The metric's value at which it alerts at ``level``."""
    tolerance = config.tolerances[metric]
    allowed = tolerance.high if level == "high" else tolerance.medium
    value = baseline - allowed if metric in HIGHER_IS_BETTER else baseline * (1.0 + allowed)
    return round(value, 12)  # 0.8, not 0.7999999999999999


def judge(
    summary: Mapping[str, float],
    metrics: Mapping[str, tuple[float, int]],
    baseline: Baseline,
    config: PerformanceConfig,
) -> list[FeatureResult]:
    """One result per metric judged in the window: ``feature`` and ``statistic`` the metric,
    ``level`` None when within tolerance, ``statistics`` the window's figures."""
    results = []
    for metric, (value, samples) in metrics.items():
        reference = baseline.metrics.get(metric)
        if reference is None or samples < config.min_outcomes:
            continue
        if metric not in HIGHER_IS_BETTER and reference <= 0:
            continue
        worse = degradation(metric, value, reference)
        tolerance = config.tolerances[metric]
        level = (
            "high" if worse >= tolerance.high else "medium" if worse >= tolerance.medium else None
        )
        statistics = {**summary, "baseline": reference, "degradation": worse}
        threshold = bar(metric, level or "medium", reference, config)
        results.append(
            FeatureResult(metric, level, metric, value, threshold, 0, samples, statistics)
        )
    return results


class PerformanceEpisodes(Episodes[PerformanceConfig]):
    """Episodes per (metric, severity); held while the degradation is at least ``close_ratio``
    of the level's tolerance."""

    def _holds(self, result: FeatureResult, level: str, episode: Episode) -> bool:
        tolerance = self.config.tolerances[result.statistic]
        allowed = tolerance.high if level == "high" else tolerance.medium
        return result.statistics["degradation"] >= allowed * self.config.close_ratio


def alert_body(baseline: Baseline, t: Transition, config: PerformanceConfig) -> dict[str, Any]:
    """The ``PerformanceAlert`` fields of an episode opened or closed."""
    r = t.result
    figures = dict(r.statistics)
    reference = figures["baseline"]
    return {
        "alert_id": make_id(
            "performance", baseline.model_name, baseline.model_version, r.statistic, t.level,
            t.state, str(t.window_start_ms),
        ),
        "state": t.state, "severity": t.level, "model_name": baseline.model_name,
        "model_version": baseline.model_version, "metric": r.statistic, "value": r.value,
        "baseline": reference, "threshold": bar(r.statistic, t.level, reference, config),
        "window_start": utc(t.window_start_ms), "window_end": utc(t.window_end_ms),
        "outcomes": r.window_count, "coverage": figures.get("coverage", 0.0),
        "label_delay_p50_s": figures.get("label_delay_p50_s", 0.0),
        "training_run_id": baseline.training_run_id, "statistics": figures,
    }  # fmt: skip
