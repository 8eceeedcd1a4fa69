"""Gradual drift (pure): Page-Hinkley charts over each feature's per-window evidence.

The window tests (``detector.judge_feature``) judge each window on its own, so a slow ramp stays
under them until one window alone shows it. A Page-Hinkley chart sums the evidence across
windows instead (Page 1954; Hinkley 1971; the form in Gama et al., "A survey on concept drift
adaptation", ACM Computing Surveys 46(4), 2014): over a statistic z that is standard normal while
the feature does not change,

    m_t = m_{t-1} + z_t - mean(z_1..z_t) - delta,    an alarm when m_t - min(m_1..m_t) >= lambda.

Each feature has up to three charts, over the z values the window tests already give:

- ``trend_up`` and ``trend_down`` (numeric features): the trend z (``stats.trend``, the mean bin
  rank against the reference's), rising or falling: a location ramp;
- ``shape`` (every feature): the chi-squared test's p-value as a normal quantile
  (``stats.normal_quantile``): spread, shape, category shares.

Page-Hinkley measures each window against the stream's own running mean, not against zero: the
reference is a finite training sample, so every window's z carries the same small offset (about
sqrt(n / (n + N)) standard deviations for windows of n and a reference of N), which a chart
anchored at zero (a CUSUM) sums into false alarms. A constant difference from training is the
window tests' to find; these charts find change over time. ``delta`` (0.5) tunes them to a
drift of one standard error a window; ``lambda`` (10) sets their own false-alarm budget: on 50
stationary features (130 charts), windows of 500 and a reference of 20,000, one alarm in 1,000
windows; a ramp of 0.05 standard deviations a window (1 sd over 20 windows) is found at a median
of 5 windows (0.25 sd), where the window tests alone need 6 or more (``bench/drift_quality.py``).

A chart that reaches ``lambda`` restarts the feature's charts. It is an alarm when the window
shows the feature away from its reference in the chart's direction (its z at least ``hold_z``)
and the chart's baseline was not away in the other direction: a change back towards the
reference, a drift ending, is none. An alarm makes the feature drift
*gradually* in that window (level medium, statistic ``ph_<chart>``, its value against
``lambda``) unless a window test already made it drift. Its episode is held while the window
still shows the feature away from its reference (``|trend z|`` or the shape z at least
``hold_z``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditline.drift.detector import DriftConfig
    from auditline.drift.episodes import FeatureResult

CHARTS = ("trend_up", "trend_down", "shape")


def evidence(statistics: Mapping[str, float]) -> list[float | None] | None:
    """The three charts' z for one window (None for a chart a feature has not: a categorical one
    has no trend); None for a result without a shape z (the model-level one)."""
    if "shape_z" not in statistics:
        return None
    trend = statistics.get("trend_z")
    return [trend, None if trend is None else -trend, statistics["shape_z"]]


@dataclass
class Chart:
    """One Page-Hinkley chart: windows seen since its (re)start, their mean z, the cumulative
    deviation and its minimum."""

    count: int = 0
    mean: float = 0.0
    total: float = 0.0
    low: float = 0.0

    def add(self, z: float, delta: float) -> float:
        """Take one window's z; the chart's statistic after it."""
        self.count += 1
        self.mean += (z - self.mean) / self.count
        self.total += z - self.mean - delta
        self.low = min(self.low, self.total)
        return self.total - self.low


class Charts:
    """The charts of every feature of one model version; JSON-able for a changelog table."""

    def __init__(self, charts: dict[str, list[Chart]] | None = None) -> None:
        self.charts = charts or {}

    def step(self, config: DriftConfig, results: list[FeatureResult]) -> list[FeatureResult]:
        """The window's feature results with the charts' alarms folded in (see the module)."""
        return [self._feature(config, result) for result in results]

    def _feature(self, config: DriftConfig, result: FeatureResult) -> FeatureResult:
        values = evidence(result.statistics)
        if result.feature is None or values is None:
            return result
        charts = self.charts.setdefault(result.feature, [Chart(), Chart(), Chart()])
        levels = [
            chart.add(z, config.ph_delta) if z is not None else 0.0
            for chart, z in zip(charts, values, strict=True)
        ]
        charted = {f"ph_{name}": level for name, level in zip(CHARTS, levels, strict=True)}
        statistics = {**result.statistics, **charted, "ph_lambda": config.ph_lambda}
        crossed = [i for i, level in enumerate(levels) if level >= config.ph_lambda]
        if not crossed:
            return dataclasses.replace(result, statistics=statistics)
        self.charts[result.feature] = [Chart(), Chart(), Chart()]  # restart after a crossing
        away_now = [
            i for i in crossed
            if (values[i] or 0.0) >= config.hold_z  # away from the reference now,
            and charts[i].mean > -config.hold_z  # from a baseline not away the other way
        ]  # fmt: skip
        if not away_now:  # a change back towards the reference (a drift ending) is no alarm
            return dataclasses.replace(result, statistics=statistics)
        chart = max(away_now, key=lambda i: levels[i])
        statistics["gradual"] = 1.0
        if result.level is not None:  # a window test decided already: it names the drift
            return dataclasses.replace(result, statistics=statistics)
        return dataclasses.replace(
            result, level="medium", statistic=f"ph_{CHARTS[chart]}", value=levels[chart],
            threshold=config.ph_lambda, statistics=statistics,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            feature: [[c.count, c.mean, c.total, c.low] for c in charts]
            for feature, charts in self.charts.items()
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Charts:
        return cls({
            feature: [Chart(int(n), float(m), float(t), float(low)) for n, m, t, low in charts]
            for feature, charts in data.items()
        })  # fmt: skip


def gradual(result: FeatureResult) -> bool:
    """Whether a result's drift came from a Page-Hinkley chart (a gradual drift)."""
    return result.statistic.startswith("ph_")


def away(statistics: Mapping[str, float], hold_z: float) -> bool:
    """Whether the window still shows the feature away from its reference (holds a gradual
    episode open)."""
    return abs(statistics.get("trend_z", 0.0)) >= hold_z or statistics.get("shape_z", 0.0) >= hold_z
