"""Gradual drift (issue 17 item 2): Page-Hinkley charts find a slow ramp before the window tests,
keep their own false-alarm budget on stationary streams, say "gradual", hold the episode while
the ramp lasts and close it once the stream is back, and survive a restart (JSON)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from auditline.drift.detector import DriftConfig, FeatureResult, Lifecycle, judge_window
from auditline.drift.explain import decided_by, onset
from auditline.drift.sequential import Chart, Charts
from auditline.testing import drift_streams as streams

SIZE, RAMP = 500, 20
CONFIG = DriftConfig()


@pytest.fixture(scope="module")
def ref() -> streams.Reference:
    return streams.reference(np.random.default_rng(1))


def x0(results: list[FeatureResult]) -> FeatureResult:
    return next(r for r in results if r.feature == "x0")


def warmed(rng: np.random.Generator, ref: streams.Reference, windows: int = 5) -> Charts:
    charts = Charts()
    for _ in range(windows):
        judge_window(ref, streams.window(rng, ref, SIZE), CONFIG, charts)
    return charts


def first_flags(
    rng: np.random.Generator, ref: streams.Reference, shift: float, windows: int, trials: int
) -> tuple[list[int], list[int], int]:
    """For ramps of x0's mean to ``shift`` sd over ``windows`` windows: the window each was first
    flagged in with the charts and by the window tests alone (``windows + 1``: never), and how
    many a chart flagged first."""
    with_charts, alone, gradual = [], [], 0
    for _ in range(trials):
        charts, first, first_alone = warmed(rng, ref), None, None
        for step in range(1, windows + 1):
            window = streams.window(rng, ref, SIZE, mean=shift * step / windows)
            result = x0(judge_window(ref, window, CONFIG, charts))
            if first is None and result.level is not None:
                first, gradual = step, gradual + (onset(result.statistic) == "gradual")
            if first_alone is None and x0(judge_window(ref, window, CONFIG)).level is not None:
                first_alone = step
        with_charts.append(first or windows + 1)
        alone.append(first_alone or windows + 1)
    return with_charts, alone, gradual


@pytest.mark.parametrize(("shift", "windows"), [(1.0, RAMP), (0.3, 30)])
def test_a_ramp_is_found_before_it_ends(
    ref: streams.Reference, shift: float, windows: int, say: object
) -> None:
    with_charts, alone, gradual = first_flags(np.random.default_rng(5), ref, shift, windows, 20)
    say(  # type: ignore[operator]
        f"ramp to {shift} sd over {windows} windows of {SIZE}: found at windows "
        f"{sorted(with_charts)} ({gradual} of 20 by a chart); window tests alone {sorted(alone)}"
    )
    assert max(with_charts) <= windows  # every ramp found before it ends
    assert all(w <= a for w, a in zip(with_charts, alone, strict=True))  # never later
    if shift < 0.5:  # a slow ramp: the window tests alone see it late, if at all
        assert statistics.median(with_charts) <= 0.7 * statistics.median(alone)
        assert gradual >= 15


def test_stationary_streams_stay_under_the_charts_budget(ref: streams.Reference) -> None:
    rng = np.random.default_rng(6)
    charts, alerted = Charts(), 0
    for _ in range(400):
        results = judge_window(ref, streams.window(rng, ref, SIZE), CONFIG, charts)
        alerted += any(r.level is not None for r in results)
    assert alerted / 400 < 0.01


def test_a_constant_offset_from_training_is_the_window_tests_concern(
    ref: streams.Reference,
) -> None:
    """The charts measure change over time: a small steady difference from the reference
    sample (under the window tests' thresholds) raises no gradual alarm."""
    rng = np.random.default_rng(7)
    charts = Charts()
    for _ in range(200):
        result = x0(judge_window(ref, streams.window(rng, ref, SIZE, mean=0.1), CONFIG, charts))
        assert result.level is None or onset(result.statistic) != "gradual"


def test_a_gradual_episode_holds_while_the_ramp_lasts_and_closes_after_it(
    ref: streams.Reference,
) -> None:
    rng = np.random.default_rng(8)
    charts, lifecycle = warmed(rng, ref), Lifecycle(CONFIG)
    ramp = [0.3 * step / 30 for step in range(1, 25)]  # a slow ramp to 0.24 sd, then back
    means = ramp + [0.0] * 6
    transitions = []
    for i, mean in enumerate(means):
        results = judge_window(ref, streams.window(rng, ref, SIZE, mean=mean), CONFIG, charts)
        transitions += [(i, t.state, t.level, t.result.statistic)
                        for t in lifecycle.step(results, i, i + 1) if t.result.feature == "x0"]  # fmt: skip
    opened = [t for t in transitions if t[1] == "opened" and t[2] == "medium"]
    closed = [t for t in transitions if t[1] == "closed" and t[2] == "medium"]
    assert len(opened) == 1 and opened[0][3] == "ph_trend_up", transitions  # one episode
    assert len(closed) == 1 and len(ramp) <= closed[0][0] <= len(ramp) + 3, transitions


def test_an_alarm_says_what_decided_it(ref: streams.Reference) -> None:
    rng = np.random.default_rng(5)
    charts = warmed(rng, ref)
    for step in range(1, RAMP + 1):
        result = x0(judge_window(ref, streams.window(rng, ref, SIZE, mean=step / RAMP), CONFIG,
                                 charts))  # fmt: skip
        if result.level is not None:
            break
    described = decided_by(result.statistic, result.statistics)
    if onset(result.statistic) == "gradual":
        assert described.startswith("Page-Hinkley chart over windows of the trend z rising")
        assert result.value >= result.threshold == CONFIG.ph_lambda
    else:
        assert "quantile bins" in described and "Benjamini-Hochberg" in described
    assert onset("psi") == "abrupt" and onset("drifted_share") == "model"
    assert decided_by("new_categories", {}) == "a category never seen in training"


def test_charts_survive_a_restart(ref: streams.Reference) -> None:
    rng = np.random.default_rng(9)
    charts = warmed(rng, ref, 3)
    again = Charts.from_json(charts.to_json())
    window = streams.window(rng, ref, SIZE, mean=0.3)
    assert judge_window(ref, window, CONFIG, charts) == judge_window(ref, window, CONFIG, again)
    chart = Chart()
    assert [round(chart.add(z, 0.5), 6) for z in (0.0, 1.0, 3.0)] == [0.0, 0.0, 1.166667]
    old = {"x0|medium": [[True], True, 0]}  # a lifecycle written before gradual episodes
    assert Lifecycle.from_json(CONFIG, old).episodes["x0|medium"].gradual is False
