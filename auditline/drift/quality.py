"""Data quality beside drift (pure): three checks per feature and judged window, against the
training run, with alert episodes of their own (``DataQualityAlert``).

- ``missing``: the window's missing rate (missing values over all the feature's values in the
  window) against the training run's (``FeatureProfile.missing`` over its rows). It alerts when
  the rate is at least ``quality_missing_margin`` (0.05, absolute) above the reference's *and* a
  one-sided two-proportion z test (``stats.proportion_increase``, both samples' noise pooled)
  gives p <= ``quality_alpha``: the margin makes it a change that matters, the test one that the
  window's size tells apart from sampling noise.
- ``out_of_range`` (numeric features): the rate, among the values present, of values below the
  training minimum (``edges[0]``) or above its maximum (``edges[-1]``); they are still counted
  into the end bins for drift. While nothing changes, a new value lies outside the range of N
  exchangeable training values with probability 2 / (N + 1) (it is the smallest or the largest
  of the N + 1; ties only lower it), so a window of n present values has about a Poisson count
  of mean n * 2 / (N + 1) outside. It alerts when the rate is at least ``quality_range_rate``
  (0.01) *and* the Poisson tail P(X >= k) <= ``quality_alpha`` (``stats.poisson_tail``).
- ``type_mismatch``: values given under the other kind than the reference's (a numeric feature
  sent as a categorical column, or the reverse; ``window.count_batch``). Any one alerts.

Severity: ``medium`` at the thresholds above; ``high`` at 4 x the missing margin (0.2 above the
reference rate: a fifth of the rows lose the feature) and at 5 x the out-of-range rate (one
value in twenty outside everything seen in training), where the model's output is a guess for a
share of the traffic that matters whatever the feature; the test is required at both. A type
mismatch is always ``high``: no sampling noise produces one, it is a broken contract between the
model and its callers (its values are lost to drift detection too), and it has only that episode.

``quality_alpha`` (0.001) bounds each check on its own. A window of F features runs up to 2F
tests (missing for each, the range for the numeric), so by Bonferroni the chance that any check
of an unchanged window alerts is at most 2F x alpha: 0.1 for 50 features, the worst case, reached
only where sampling noise alone can carry a rate over its floor (small windows, a reference
missing rate about one half). Elsewhere the floors keep it far lower: on 50 stationary features,
no window of 200 (of 500 or 2,000 values) has a quality alert (tests/unit/drift/test_quality.py,
bench/drift_quality.py). Unlike drift's Benjamini-Hochberg, the bound does not lean on the other
features' evidence, so one feature's broken pipeline does not lower another's bar.

A feature is judged in a window with at least ``min_window_count`` values (missing included).
Episodes, one per (feature, check, severity), follow drift's ``Lifecycle`` (opened after
``open_k`` of ``open_n`` windows, closed after ``close_m`` clean windows in a row); an open
episode is held while the window's excess is at least ``close_ratio`` of its threshold's (the
missing rate's increase over the reference's, the out-of-range rate; a type mismatch while any
value is mismatched), so a persisting problem about its threshold is one episode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditline.drift import stats
from auditline.drift.episodes import LEVELS, Episode, FeatureResult, Lifecycle, Transition, utc
from auditline.drift.episodes import alert_id as make_id

if TYPE_CHECKING:
    from auditline.drift.detector import DriftConfig
    from auditline.drift.reference import FeatureReference, Reference
    from auditline.drift.window import FeatureCounts, WindowCounts

CHECKS = ("missing", "out_of_range", "type_mismatch")
HIGH = {"missing": 4.0, "out_of_range": 5.0}  # severity high at this multiple of the threshold


def judge_quality(
    reference: Reference, window: WindowCounts, config: DriftConfig
) -> list[FeatureResult]:
    """The checks of one window, per feature with at least ``min_window_count`` values: each
    result's ``statistic`` is the check, ``value`` the rate, ``level`` None when it passed."""
    results = []
    for ref in reference.features:
        counts = window.features.get(ref.name)
        if counts is None or counts.values < config.min_window_count:
            continue
        results.append(missing(ref, counts, config))
        if ref.numeric:
            results.append(out_of_range(ref, counts, config))
        results.append(type_mismatch(ref, counts))
    return results


def bar(check: str, level: str, config: DriftConfig) -> float:
    """What a check's excess must reach for ``level``: the missing rate's increase over the
    reference's, or the out-of-range rate (a type mismatch: any value)."""
    if check == "type_mismatch":
        return 0.0
    base = config.quality_missing_margin if check == "missing" else config.quality_range_rate
    return base * HIGH[check] if level == "high" else base


def missing(ref: FeatureReference, counts: FeatureCounts, config: DriftConfig) -> FeatureResult:
    n, rows = counts.values, ref.total + ref.missing
    rate, reference_rate = counts.missing / n, ref.missing_rate
    test = stats.proportion_increase(ref.missing, rows, counts.missing, n)
    level = _level("missing", rate - reference_rate, test.p_value, config)
    threshold = reference_rate + bar("missing", level or "medium", config)
    figures = {"z": test.statistic, "p_value": test.p_value, "reference_count": float(rows)}
    return _result(
        ref, "missing", level, rates=(rate, reference_rate, threshold), affected=counts.missing,
        window_count=n, figures=figures,
    )  # fmt: skip


def out_of_range(
    ref: FeatureReference, counts: FeatureCounts, config: DriftConfig
) -> FeatureResult:
    present, outside = counts.total, counts.out_of_range
    rate, reference_rate = (outside / present if present else 0.0), 2 / (ref.total + 1)
    p_value = stats.poisson_tail(outside, present * reference_rate)
    level = _level("out_of_range", rate, p_value, config)
    threshold = bar("out_of_range", level or "medium", config)
    figures = {
        "expected": present * reference_rate, "p_value": p_value,
        "reference_count": float(ref.total), "minimum": ref.edges[0], "maximum": ref.edges[-1],
    }  # fmt: skip
    return _result(
        ref, "out_of_range", level, rates=(rate, reference_rate, threshold), affected=outside,
        window_count=present, figures=figures,
    )  # fmt: skip


def type_mismatch(ref: FeatureReference, counts: FeatureCounts) -> FeatureResult:
    n, affected = counts.values, counts.mismatched
    figures = {"reference_count": float(ref.total + ref.missing)}
    return _result(
        ref, "type_mismatch", "high" if affected else None, rates=(affected / n, 0.0, 0.0),
        affected=affected, window_count=n, figures=figures,
    )  # fmt: skip


def _level(check: str, excess: float, p_value: float, config: DriftConfig) -> str | None:
    if p_value > config.quality_alpha:
        return None
    return next((lv for lv in reversed(LEVELS) if excess >= bar(check, lv, config)), None)


def _result(
    ref: FeatureReference,
    check: str,
    level: str | None,
    *,
    rates: tuple[float, float, float],  # the window's, the reference's, the threshold
    affected: int,
    window_count: int,
    figures: dict[str, float],
) -> FeatureResult:
    rate, reference_rate, threshold = rates
    statistics = {"reference_rate": reference_rate, "affected": float(affected), **figures}
    reference_count = int(figures["reference_count"])
    return FeatureResult(
        ref.name, level, check, rate, threshold, reference_count, window_count, statistics
    )


class QualityLifecycle(Lifecycle):
    """Episodes per (feature, check, severity); see the module for the holding bar."""

    def _key(self, result: FeatureResult, level: str) -> str:
        return f"{result.feature or ''}|{result.statistic}|{level}"

    def _levels(self, result: FeatureResult) -> tuple[str, ...]:
        return ("high",) if result.statistic == "type_mismatch" else LEVELS

    def _holds(self, result: FeatureResult, level: str, episode: Episode) -> bool:
        check = result.statistic
        if check == "type_mismatch":
            return False  # held only while a value is mismatched (the window reached it)
        excess = result.value - (result.statistics["reference_rate"] if check == "missing" else 0)
        return excess >= bar(check, level, self.config) * self.config.close_ratio


def alert_body(reference: Reference, t: Transition, config: DriftConfig) -> dict[str, Any]:
    """The ``DataQualityAlert`` fields of an episode opened or closed; its ``threshold`` is the
    rate at which the check alerts at the episode's severity."""
    r = t.result
    feature, figures = r.feature or "", dict(r.statistics)
    reference_rate, affected = figures.pop("reference_rate"), figures.pop("affected")
    base = reference_rate if r.statistic == "missing" else 0.0
    return {
        "alert_id": make_id(
            "quality", reference.model_name, reference.model_version, feature, r.statistic,
            t.level, t.state, str(t.window_start_ms),
        ),
        "state": t.state, "severity": t.level, "model_name": reference.model_name,
        "model_version": reference.model_version, "feature": feature, "check": r.statistic,
        "rate": r.value, "reference_rate": reference_rate,
        "threshold": base + bar(r.statistic, t.level, config),
        "affected": int(affected), "window_count": r.window_count,
        "window_start": utc(t.window_start_ms), "window_end": utc(t.window_end_ms),
        "training_run_id": reference.training_run_id, "statistics": figures,
    }  # fmt: skip
