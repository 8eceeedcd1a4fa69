"""Drift detection quality on synthetic streams with known shifts (issue 17's goals), seeded.

50 features (40 numeric N(0, 1), 10 categorical), windows of 500 predictions, the detector's
window tests and Page-Hinkley charts as the worker runs them (``judge_window`` with ``Charts``):

abrupt     = after 5 stationary windows, one shifted window: mean +0.5 sd, variance x2, a
             category's share doubled, a new category at 5% (x0 or c0); the share of trials
             that flag the shifted feature in that first window (goal >= 0.95)
gradual    = after 5 stationary windows, x0's mean ramps to 1 sd over 20 windows; the share of
             trials that flag x0 before the ramp ends (goal 1.0), the median window of the first
             flag with the charts and with the window tests alone, and how many were "gradual";
             the same for a slow ramp to 0.3 sd over 30 windows (``slow_*``)
stationary = 1,000 stationary windows in a row; the share with any alert (goal < 0.01)
ratio      = CPU per window without the charts / with them (the price of the sequential layer)
quality    = the data-quality checks (``auditline.drift.quality``): the share of first windows
             that flag each injected problem (20% of x0 missing, 2% of x0 beyond the training
             range, x1 sent as categorical strings, 20% of c0 missing: goal 1.0), and the share
             of the 1,000 stationary windows with a quality alert (goal 0)

One core, no broker. Ends with one JSON line.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
from _report import report

from auditline.drift.detector import DriftConfig, FeatureResult, judge_window
from auditline.drift.quality import judge_quality
from auditline.drift.sequential import Charts
from auditline.drift.window import WindowCounts, count_batch
from auditline.testing import drift_streams as streams

SIZE, WARM_UP, TRIALS, RAMP, STATIONARY = 500, 5, 100, 20, 1_000
CONFIG = DriftConfig()
ABRUPT: dict[str, tuple[str, dict[str, Any]]] = {
    "mean_0_5sd": ("x0", {"mean": 0.5}),
    "variance_x2": ("x0", {"scale": float(np.sqrt(2))}),
    "share_x2": ("c0", {"shares": np.array([0.40, 0.50, 0.05, 0.03, 0.02])}),
    "new_category_5pct": (
        "c0",
        {
            "categories": ("a", "b", "c", "d", "zz"),
            "shares": np.array([0.42, 0.25, 0.16, 0.12, 0.05]),
        },
    ),
}


def flagged(results: list[FeatureResult], feature: str) -> FeatureResult | None:
    return next((r for r in results if r.feature == feature and r.level is not None), None)


def warmed(rng: np.random.Generator, ref: streams.Reference) -> Charts:
    charts = Charts()
    for _ in range(WARM_UP):
        judge_window(ref, streams.window(rng, ref, SIZE), CONFIG, charts)
    return charts


def abrupt(rng: np.random.Generator, ref: streams.Reference) -> dict[str, float]:
    rates = {}
    for name, (feature, shift) in ABRUPT.items():
        caught = 0
        for _ in range(TRIALS):
            charts = warmed(rng, ref)
            results = judge_window(ref, streams.window(rng, ref, SIZE, **shift), CONFIG, charts)
            caught += flagged(results, feature) is not None
        rates[f"abrupt_{name}_first_window"] = caught / TRIALS
    return rates


def gradual(
    rng: np.random.Generator, ref: streams.Reference, shift: float, windows: int, name: str
) -> dict[str, float]:
    with_charts, tests_alone, by_chart = [], [], 0
    for _ in range(TRIALS):
        charts = warmed(rng, ref)
        first = alone = None
        for step in range(1, windows + 1):
            window = streams.window(rng, ref, SIZE, mean=shift * step / windows)
            result = flagged(judge_window(ref, window, CONFIG, charts), "x0")
            if result is not None and first is None:
                first, by_chart = step, by_chart + result.statistic.startswith("ph_")
            if alone is None and flagged(judge_window(ref, window, CONFIG), "x0") is not None:
                alone = step
        with_charts.append(first or windows + 1)
        tests_alone.append(alone or windows + 1)
    return {
        f"{name}_detected_before_ramp_end": sum(w <= windows for w in with_charts) / TRIALS,
        f"{name}_median_window": statistics.median(with_charts),
        f"{name}_median_sd_at_detection": statistics.median(with_charts) * shift / windows,
        f"{name}_median_window_tests_alone": statistics.median(tests_alone),
        f"{name}_detected_by_tests_alone": sum(a <= windows for a in tests_alone) / TRIALS,
        f"{name}_flagged_by_page_hinkley": by_chart / TRIALS,
    }


def stationary(rng: np.random.Generator, ref: streams.Reference) -> dict[str, float]:
    charts, alerted = Charts(), 0
    windows = [streams.window(rng, ref, SIZE) for _ in range(STATIONARY)]
    start = time.process_time()
    for window in windows:
        alerted += any(r.level is not None for r in judge_window(ref, window, CONFIG, charts))
    with_charts = time.process_time() - start
    start = time.process_time()
    for window in windows:
        judge_window(ref, window, CONFIG)
    alone = time.process_time() - start
    return {
        "stationary_windows_with_alert": alerted / STATIONARY,
        "cpu_ms_per_window": with_charts / STATIONARY * 1000,
        "ratio": alone / with_charts,
    }


Columns = tuple[dict[str, list[float | None]], dict[str, list[str | None]]]


def _missing(rng: np.random.Generator, columns: Columns, feature: str, share: float) -> None:
    numeric, categorical = columns
    values: list[Any] = numeric[feature] if feature in numeric else categorical[feature]
    for i in rng.choice(len(values), size=round(share * len(values)), replace=False):
        values[i] = None


def _beyond(rng: np.random.Generator, columns: Columns) -> None:
    values = columns[0]["x0"]
    for i in rng.choice(len(values), size=round(0.02 * len(values)), replace=False):
        values[i] = 6.0 + float(rng.random())  # the training range of N(0, 1) is about +-4


def _as_strings(rng: np.random.Generator, columns: Columns) -> None:
    numeric, categorical = columns
    categorical["x1"] = [f"{v:.3f}" for v in numeric.pop("x1") if v is not None]


QUALITY: dict[str, tuple[str, str, Any]] = {
    "missing_20pct": ("x0", "missing", lambda rng, c: _missing(rng, c, "x0", 0.2)),
    "out_of_range_2pct": ("x0", "out_of_range", _beyond),
    "type_mismatch": ("x1", "type_mismatch", _as_strings),
    "categorical_missing_20pct": ("c0", "missing", lambda rng, c: _missing(rng, c, "c0", 0.2)),
}


def quality(rng: np.random.Generator, ref: streams.Reference) -> dict[str, float]:
    rates = {}
    for name, (feature, check, inject) in QUALITY.items():
        caught = 0
        for _ in range(TRIALS):
            columns = streams.columns(rng, SIZE)
            inject(rng, columns)
            window: WindowCounts = count_batch(ref, SIZE, *columns)
            results = judge_quality(ref, window, CONFIG)
            caught += any(
                r.feature == feature and r.statistic == check and r.level for r in results
            )
        rates[f"quality_{name}_first_window"] = caught / TRIALS
    alerted = sum(
        any(r.level for r in judge_quality(ref, streams.window(rng, ref, SIZE), CONFIG))
        for _ in range(STATIONARY)
    )
    rates["quality_stationary_windows_with_alert"] = alerted / STATIONARY
    return rates


def main() -> None:
    rng = np.random.default_rng(7)
    ref = streams.reference(rng)
    started = time.process_time()
    figures = {
        **abrupt(rng, ref),
        **gradual(rng, ref, 1.0, RAMP, "gradual"),
        **gradual(rng, ref, 0.3, 30, "slow"),
        **stationary(rng, ref),
        **quality(rng, ref),
    }
    figures["cpu_seconds"] = time.process_time() - started
    report("drift_quality", figures, features=50, window=SIZE)


if __name__ == "__main__":
    main()
