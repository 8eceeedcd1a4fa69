"""The drift detector (pure): windows of one model version → statistics → alert episodes.

Per released window, every reference feature (and the prediction distribution) gets PSI and
Jensen-Shannon, plus a test: KS and chi-squared on the reference's quantile bins for numeric
features (the smaller p-value, doubled), chi-squared for categorical ones. The
tests' p-values are put through Benjamini-Hochberg at ``fdr`` across the window's features, so
fifty stationary features do not raise alerts by chance. A feature *drifts* in a window when its
test is rejected and its PSI reaches ``psi_warn`` (severity medium) or ``psi_alert`` (high), or
when a category never seen in training appears (high). Windows with fewer than
``min_window_count`` predictions are not judged.

Alert episodes, one per (model, version, feature, severity): opened when the feature drifted at
that severity (or above) in ``open_k`` of the last ``open_n`` judged windows, closed after
``close_m`` judged windows in a row without it. An open episode is held by a weaker statistic
than the one that opened it (hysteresis): a window still counts as drifting while its statistic
is at least ``close_ratio`` of the threshold, so one steady shift whose PSI hovers about the
threshold is one episode, not one per crossing. The model itself has an episode when at least
``model_share`` of its features drift in a window. Alert ids are deterministic, so a replay after
a restart yields the same ids. The episodes themselves are ``auditline.drift.episodes``.

Each released window is also checked for data quality (``auditline.drift.quality``: missing
values, values outside the training range, values of the other kind), with episodes of their
own; those alerts are ``DataQualityAlert`` bodies, told apart by ``explain.alert_model``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from auditline.drift import quality, stats
from auditline.drift.episodes import FeatureResult, Lifecycle, Transition, alert_id, utc
from auditline.drift.reference import FeatureReference, Reference
from auditline.drift.sequential import Charts
from auditline.drift.window import FeatureCounts, WindowCounts, Windows, count_event
from auditline.events import Prediction, PredictionBatch


class DriftConfig(BaseModel):
    """Thresholds and window settings (per model: ``DriftConfig.for_model``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_seconds: int = Field(3600, gt=0)
    allowed_lateness_seconds: int = Field(300, ge=0)
    psi_warn: float = Field(0.1, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    fdr: float = Field(0.01, gt=0, lt=1)
    min_window_count: int = Field(100, ge=1)
    open_k: int = Field(1, ge=1)
    open_n: int = Field(1, ge=1)
    close_m: int = Field(2, ge=1)
    close_ratio: float = Field(0.5, gt=0, le=1)
    model_share: float = Field(0.3, gt=0, le=1)
    ph_delta: float = Field(0.5, ge=0)
    ph_lambda: float = Field(10.0, gt=0)
    hold_z: float = Field(2.0, gt=0)
    quality_missing_margin: float = Field(0.05, gt=0, le=1)
    quality_range_rate: float = Field(0.01, gt=0, le=1)
    quality_alpha: float = Field(0.001, gt=0, lt=1)

    @model_validator(mode="after")
    def _consistent(self) -> DriftConfig:
        if self.psi_alert < self.psi_warn:
            raise ValueError("psi_alert must be at least psi_warn")
        if self.open_k > self.open_n:
            raise ValueError("open_k (windows over threshold) cannot exceed open_n (of windows)")
        return self


def judge_feature(ref: FeatureReference, counts: FeatureCounts) -> dict[str, float]:
    """The window's statistics of one feature. A numeric feature gets two tests on the
    reference's quantile bins: KS (sensitive to location) and chi-squared (to spread and shape:
    a doubled variance moves mass into the outer bins, which KS on ten bins barely sees); its
    ``p_value`` is the smaller one's, Bonferroni-corrected for the two."""
    tests: dict[str, float] = {}
    chi2 = stats.chi2(ref.counts, counts.counts)
    if ref.numeric:
        ks, trend = stats.ks(ref.counts, counts.counts), stats.trend(ref.counts, counts.counts)
        p_value = min(1.0, 2 * min(ks.p_value, chi2.p_value))
        tests = {"ks": ks.statistic, "ks_p_value": ks.p_value, "chi2": chi2.statistic,
                 "chi2_p_value": chi2.p_value, "trend_z": trend.statistic}  # fmt: skip
    else:
        p_value, tests = chi2.p_value, {"chi2": chi2.statistic, "chi2_p_value": chi2.p_value}
    tests["shape_z"] = stats.normal_quantile(chi2.p_value)  # evidence the gradual charts sum
    return {
        "psi": stats.psi(ref.counts, counts.counts),
        "js": stats.js(ref.counts, counts.counts),
        **tests,
        "p_value": p_value,
        "missing": float(counts.missing),
        "new_categories": float(sum(counts.new.values())),
    }


def judge_window(
    reference: Reference, window: WindowCounts, config: DriftConfig, charts: Charts | None = None
) -> list[FeatureResult]:
    """Per-feature results of one window (with ``charts``, their gradual alarms folded in), then
    the model-level one (empty: too few samples)."""
    judged = [
        (ref, window.features[ref.name], judge_feature(ref, window.features[ref.name]))
        for ref in reference.features
        if ref.name in window.features
        and window.features[ref.name].total >= config.min_window_count
    ]
    rejected = stats.benjamini_hochberg([s["p_value"] for _, _, s in judged], config.fdr)
    results = []
    for (ref, counts, values), significant in zip(judged, rejected, strict=True):
        values["bh_rejected"] = float(significant)
        level, statistic, value, threshold = _level(values, significant, config)
        results.append(
            FeatureResult(
                ref.name, level, statistic, value, threshold, ref.total, counts.total, values
            )
        )
    if charts is not None:
        results = charts.step(config, results)
    if results:
        share = sum(r.level is not None for r in results) / len(results)
        results.append(
            FeatureResult(
                None,
                "high" if share >= config.model_share else None,
                "drifted_share",
                share,
                config.model_share,
                max(r.reference_count for r in results),
                window.predictions,
                {"features": float(len(results)), "drifted": share * len(results)},
            )
        )
    return results


def _level(
    values: Mapping[str, float], significant: bool, config: DriftConfig
) -> tuple[str | None, str, float, float]:
    if values["new_categories"] > 0:
        return "high", "new_categories", values["new_categories"], 0.0
    psi = values["psi"]
    if significant and psi >= config.psi_alert:
        return "high", "psi", psi, config.psi_alert
    if significant and psi >= config.psi_warn:
        return "medium", "psi", psi, config.psi_warn
    return None, "psi", psi, config.psi_warn


class DriftDetector:
    """One model version: events in, alert bodies out: ``DriftAlert`` fields, and
    ``DataQualityAlert`` fields for the data-quality checks (``explain.alert_model`` tells them
    apart)."""

    def __init__(
        self,
        reference: Reference,
        config: DriftConfig | None = None,
        windows: Windows | None = None,
        lifecycle: Lifecycle | None = None,
        charts: Charts | None = None,
        *,
        quality_lifecycle: quality.QualityLifecycle | None = None,
    ) -> None:
        self.reference = reference
        self.config = config or DriftConfig()
        self.windows = windows or Windows(
            self.config.window_seconds * 1000, self.config.allowed_lateness_seconds * 1000
        )
        self.lifecycle = lifecycle or Lifecycle(self.config)
        self.charts = charts or Charts()
        self.quality = quality_lifecycle or quality.QualityLifecycle(self.config)

    def observe(self, event: Prediction | PredictionBatch) -> list[dict[str, Any]]:
        self.add(_millis(event.envelope.event_time), count_event(self.reference, event))
        return self.release()

    def add(self, event_time_ms: int, counts: WindowCounts) -> None:
        self.windows.add(event_time_ms, counts)

    def release(self, *, everything: bool = False) -> list[dict[str, Any]]:
        """The alert bodies of the windows ready to be judged: each window's drift alerts, then
        its data-quality alerts."""
        alerts = []
        for start, end, counts in self.windows.release(everything=everything):
            results = judge_window(self.reference, counts, self.config, self.charts)
            for transition in self.lifecycle.step(results, start, end):
                alerts.append(alert_body(self.reference, transition))
            checked = quality.judge_quality(self.reference, counts, self.config)
            for transition in self.quality.step(checked, start, end):
                alerts.append(quality.alert_body(self.reference, transition, self.config))
        return alerts

    def open_episodes(self) -> list[str]:
        """The episodes still open, drift's and data quality's (``quality|`` before these)."""
        return [
            *self.lifecycle.open_episodes(),
            *(f"quality|{key}" for key in self.quality.open_episodes()),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "windows": self.windows.to_json(),
            "lifecycle": self.lifecycle.to_json(),
            "charts": self.charts.to_json(),
            "quality": self.quality.to_json(),
        }

    @classmethod
    def from_json(
        cls, reference: Reference, config: DriftConfig, data: Mapping[str, Any]
    ) -> DriftDetector:
        """Also the state written before the charts or the quality checks (their keys absent)."""
        return cls(
            reference,
            config,
            Windows.from_json(data["windows"]),
            Lifecycle.from_json(config, data["lifecycle"]),
            Charts.from_json(data.get("charts", {})),
            quality_lifecycle=quality.QualityLifecycle.from_json(config, data.get("quality", {})),
        )


def alert_body(reference: Reference, t: Transition) -> dict[str, Any]:
    r = t.result
    return {
        "alert_id": alert_id(
            reference.model_name, reference.model_version, r.feature or "", t.level, t.state,
            str(t.window_start_ms),
        ),
        "state": t.state, "severity": t.level, "model_name": reference.model_name,
        "model_version": reference.model_version, "feature": r.feature,
        "statistic": r.statistic, "value": r.value, "threshold": r.threshold,
        "window_start": utc(t.window_start_ms), "window_end": utc(t.window_end_ms),
        "reference_count": r.reference_count, "window_count": r.window_count,
        "training_run_id": reference.training_run_id, "statistics": r.statistics,
    }  # fmt: skip


def _millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)
