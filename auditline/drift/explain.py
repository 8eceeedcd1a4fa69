"""What decided a drift or data-quality alert, in words an auditor can reproduce (pure, no numpy).

A ``DriftAlert`` carries its ``statistic``, ``value``, ``threshold``, window bounds, training run
and the window's ``statistics``; from those this names the drift's onset (``abrupt``: one window
showed it; ``gradual``: a Page-Hinkley chart summed it over windows; ``model``: a share of the
model's features) and the test that decided, with its p-value or chart value. The alerting
payloads, ``auditline drift`` and the demo print it; docs/drift.md lists every case.

The detector returns the bodies of both kinds of alert; ``alert_model`` tells which event a body
is (a ``DataQualityAlert`` names its ``check``, a ``DriftAlert`` its ``statistic``), and
``quality_test`` says what decided a data-quality one (``auditline.drift.quality``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditline.events import DataQualityAlert, DriftAlert, Event

CHART_NAMES = {
    "ph_trend_up": "the trend z rising (the mean bin rank moving up)",
    "ph_trend_down": "the trend z falling (the mean bin rank moving down)",
    "ph_shape": "the chi-squared test's normal quantile (spread, shape or shares)",
}


def onset(statistic: str) -> str:
    if statistic.startswith("ph_"):
        return "gradual"
    if statistic == "drifted_share":
        return "model"
    return "abrupt"


def decided_by(statistic: str, statistics: Mapping[str, float]) -> str:
    """The test that decided, e.g. ``chi-squared on the reference's quantile bins (p = 1.2e-09,
    doubled for two tests), kept by Benjamini-Hochberg across the window's features`` (the PSI
    that also had to reach its threshold is the alert's own ``value`` and ``threshold``)."""
    if statistic == "new_categories":
        return "a category never seen in training"
    if statistic == "drifted_share":
        drifted, features = statistics.get("drifted", 0.0), statistics.get("features", 0.0)
        return f"{drifted:.0f} of {features:.0f} features drifting in the window"
    if statistic.startswith("ph_"):
        value, limit = statistics.get(statistic, 0.0), statistics.get("ph_lambda", 0.0)
        chart = CHART_NAMES.get(statistic, statistic)
        return f"Page-Hinkley chart over windows of {chart}: {value:.3g} >= {limit:.3g}"
    return f"{_window_test(statistics)}, kept by Benjamini-Hochberg across the window's features"


def _window_test(statistics: Mapping[str, float]) -> str:
    ks, chi2 = statistics.get("ks_p_value"), statistics.get("chi2_p_value")
    if ks is not None and chi2 is not None:  # numeric: the smaller of the two decided
        if ks <= chi2:
            return f"KS on the reference's quantile bins (p = {ks:.3g}, doubled for two tests)"
        return (
            f"chi-squared on the reference's quantile bins (p = {chi2:.3g}, doubled for two tests)"
        )
    p_value = statistics.get("p_value", 1.0)
    return f"chi-squared of homogeneity over the categories (p = {p_value:.3g})"


def alert_model(body: Mapping[str, Any]) -> type[Event]:
    """The event an alert body of the drift detector is: ``DataQualityAlert`` or ``DriftAlert``."""
    return DataQualityAlert if "check" in body else DriftAlert


def quality_test(
    check: str, rate: float, reference_rate: float, statistics: Mapping[str, float]
) -> str:
    """What decided a data-quality alert, with the figures that reproduce it."""
    p_value = statistics.get("p_value", 1.0)
    floor = 1e-300 if check == "missing" else 1e-15  # the normal tail's precision, Poisson's
    p_text = f"p = {p_value:.3g}" if p_value >= floor else f"p < {floor:.0e}"
    if check == "missing":
        return (
            f"missing in {rate:.2%} of the window's values against {reference_rate:.2%} in "
            f"training (one-sided two-proportion test, {p_text})"
        )
    if check == "out_of_range":
        return (
            f"{rate:.2%} of the values present outside the training range, where "
            f"{reference_rate:.2%} is expected by chance (Poisson tail, {p_text})"
        )
    return f"{rate:.2%} of the window's values given as the other kind than in training"


def described(alert: Mapping[str, Any]) -> dict[str, Any]:
    """An alert body of the detector with its ``kind`` (the event's name) and the ``test`` that
    decided it, and for drift its ``onset`` (what ``auditline drift`` prints)."""
    statistics = alert.get("statistics") or {}
    if alert_model(alert) is DataQualityAlert:
        test = quality_test(alert["check"], alert["rate"], alert["reference_rate"], statistics)
        return {"kind": "DataQualityAlert", **alert, "test": test}
    statistic = alert["statistic"]
    return {
        "kind": "DriftAlert", **alert,
        "onset": onset(statistic), "test": decided_by(statistic, statistics),
    }  # fmt: skip
