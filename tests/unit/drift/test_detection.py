"""Statistical acceptance of the drift detector on synthetic streams (seeded, so repeatable):
stationary features stay quiet, injected shifts are caught in the first window after them."""

from __future__ import annotations

import numpy as np
import pytest

from auditline.drift.detector import DriftConfig, judge_window
from auditline.testing import drift_streams as synthetic

WINDOW = 2_000
CONFIG = DriftConfig()


@pytest.fixture(scope="module")
def ref() -> synthetic.Reference:
    return synthetic.reference(np.random.default_rng(1))


def drifted(results: list, feature: str) -> bool:  # type: ignore[type-arg]
    return any(r.feature == feature and r.level is not None for r in results)


@pytest.mark.parametrize("size", [500, WINDOW])
def test_stationary_streams_raise_alarms_in_under_1_percent_of_windows(
    ref: synthetic.Reference, size: int, say: object
) -> None:
    rng = np.random.default_rng(2)
    windows = 200
    alarms = rejections = unadjusted = 0
    for _ in range(windows):
        results = judge_window(ref, synthetic.window(rng, ref, size), CONFIG)
        alarms += any(r.level is not None for r in results)
        rejections += any(r.statistics.get("bh_rejected") for r in results)
        unadjusted += any(r.statistics.get("p_value", 1) <= CONFIG.fdr for r in results)
    say(  # type: ignore[operator]
        f"stationary, 50 features, windows of {size}: {alarms} of {windows} alarmed; rejected after "
        f"Benjamini-Hochberg in {rejections}, without it in {unadjusted}"
    )
    assert alarms / windows < 0.01
    # the multiple-testing control alone holds the rate: under the global null, BH at q rejects
    # anything in a window with probability at most q, so 200 windows expect at most 2 (a
    # binomial count; 2q leaves room for its noise, and the alarms above stay under 1%)
    assert rejections / windows <= 2 * CONFIG.fdr


SHIFTS = {
    "mean +0.5 sd": ("x0", {"mean": 0.5}),
    "variance x2": ("x0", {"scale": float(np.sqrt(2))}),
    "category share doubled": (
        "c0",
        {"shares": np.array([0.40, 0.50, 0.05, 0.03, 0.02])},  # "b": 0.25 -> 0.50
    ),
    "new category": (
        "c0",
        {
            "categories": ("a", "b", "c", "d", "zz"),
            "shares": np.array([0.4, 0.25, 0.15, 0.12, 0.08]),
        },
    ),
}


@pytest.mark.parametrize("size", [500, WINDOW])
@pytest.mark.parametrize("shift", SHIFTS, ids=str)
def test_injected_shifts_are_detected_in_the_first_window(
    ref: synthetic.Reference, shift: str, size: int, say: object
) -> None:
    feature, arguments = SHIFTS[shift]
    rng = np.random.default_rng(3)
    trials = 100
    caught = sum(
        drifted(judge_window(ref, synthetic.window(rng, ref, size, **arguments), CONFIG), feature)
        for _ in range(trials)
    )
    say(f"{shift}, windows of {size}: detected in {caught} of {trials} first windows")  # type: ignore[operator]
    assert caught / trials >= 0.95
