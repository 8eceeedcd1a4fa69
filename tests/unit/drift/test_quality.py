"""Data quality beside drift (issue 17 item 4): missing values, values outside the training range
and values of the other kind, per feature, on synthetic windows (seeded, so repeatable)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats as scipy_stats

from auditline.drift import stats
from auditline.drift.detector import DriftConfig, DriftDetector
from auditline.drift.episodes import FeatureResult
from auditline.drift.explain import alert_model, described
from auditline.drift.quality import QualityLifecycle, judge_quality
from auditline.drift.reference import FeatureReference, Reference
from auditline.drift.window import FeatureCounts, WindowCounts, count_batch
from auditline.events import DataQualityAlert, DriftAlert, Envelope, FeatureProfile, ProducerInfo
from auditline.events.types import FeatureKind
from auditline.testing import drift_streams as synthetic

CONFIG = DriftConfig()
SIZE = 500


@pytest.fixture(scope="module")
def ref() -> Reference:
    return synthetic.reference(np.random.default_rng(1))


def flagged(results: list[FeatureResult]) -> set[tuple[str | None, str, str | None]]:
    return {(r.feature, r.statistic, r.level) for r in results if r.level is not None}


def with_missing(rng: np.random.Generator, ref: Reference, share: float) -> WindowCounts:
    """A stationary window but for ``share`` of x0's values missing (exactly)."""
    numeric, categorical = synthetic.columns(rng, SIZE)
    lost = set(rng.choice(SIZE, size=round(share * SIZE), replace=False).tolist())
    numeric["x0"] = [None if i in lost else v for i, v in enumerate(numeric["x0"])]
    return count_batch(ref, SIZE, numeric, categorical)


@pytest.mark.parametrize("size", [SIZE, 2_000])
def test_stationary_streams_raise_no_quality_alert(ref: Reference, size: int, say: Any) -> None:
    rng = np.random.default_rng(2)
    alerted = sum(
        bool(flagged(judge_quality(ref, synthetic.window(rng, ref, size), CONFIG)))
        for _ in range(200)
    )
    say(f"stationary, 50 features, windows of {size}: {alerted} of 200 with a quality alert")
    assert alerted == 0


def test_missing_values_are_caught_in_the_first_window(ref: Reference, say: Any) -> None:
    rng = np.random.default_rng(3)
    caught = [flagged(judge_quality(ref, with_missing(rng, ref, 0.2), CONFIG)) for _ in range(50)]
    say(f"20% missing: caught in {sum(('x0', 'missing', 'high') in c for c in caught)} of 50")
    assert all(c == {("x0", "missing", "high")} for c in caught)  # 0.2 above 0: 4 x the margin
    medium = flagged(judge_quality(ref, with_missing(rng, ref, 0.1), CONFIG))
    assert medium == {("x0", "missing", "medium")}
    assert not flagged(judge_quality(ref, with_missing(rng, ref, 0.02), CONFIG))  # under the margin


def test_the_reference_missing_rate_is_the_baseline() -> None:
    profile = FeatureProfile(name="x", kind=FeatureKind.NUMERIC, count=8_000, missing=2_000,
                             bin_edges=(0.0, 1.0, 2.0), bin_counts=(4_000, 4_000))  # fmt: skip
    feature = FeatureReference.from_profile(profile)
    assert (feature.missing, feature.missing_rate) == (2_000, 0.2)
    ref = Reference("m", "1", "run", (feature,))
    usual = {"x": [None] * 110 + [0.5] * 390}  # 22% missing: as in training
    assert not flagged(judge_quality(ref, count_batch(ref, 500, usual, {}), CONFIG))
    worse = {"x": [None] * 150 + [0.5] * 350}  # 30%: 0.1 above it
    [missing, *_] = judge_quality(ref, count_batch(ref, 500, worse, {}), CONFIG)
    assert (missing.level, missing.value, missing.threshold) == ("medium", 0.3, 0.25)
    assert missing.statistics["reference_rate"] == 0.2 and missing.statistics["p_value"] < 1e-3


def test_values_beyond_the_training_range_are_caught(ref: Reference) -> None:
    rng = np.random.default_rng(4)
    for share, level in ((0.02, "medium"), (0.06, "high")):
        numeric, categorical = synthetic.columns(rng, SIZE)
        outside = int(share * SIZE)
        numeric["x0"][:outside] = [9.0] * outside  # N(0, 1) training: its range is about +-4
        counts = count_batch(ref, SIZE, numeric, categorical)
        assert counts.features["x0"].out_of_range == outside
        assert sum(counts.features["x0"].counts) == SIZE  # still in the end bins for drift
        results = judge_quality(ref, counts, CONFIG)
        assert flagged(results) == {("x0", "out_of_range", level)}
        result = next(r for r in results if r.feature == "x0" and r.statistic == "out_of_range")
        assert result.value == share and result.statistics["expected"] == pytest.approx(
            SIZE * 2 / 20_001
        )


def test_a_feature_sent_as_the_other_kind_is_mismatched_not_missing(ref: Reference) -> None:
    rng = np.random.default_rng(5)
    numeric, categorical = synthetic.columns(rng, SIZE)
    categorical["x1"] = [None if i < 50 else f"{v:.3f}" for i, v in enumerate(numeric.pop("x1"))]
    numeric["c1"] = [float(i) for i in range(SIZE)]
    del categorical["c1"]
    counts = count_batch(ref, SIZE, numeric, categorical)
    x1, c1 = counts.features["x1"], counts.features["c1"]
    assert (x1.mismatched, x1.missing, x1.total) == (450, 50, 0)
    assert (c1.mismatched, c1.missing, c1.total) == (SIZE, 0, 0)
    assert flagged(judge_quality(ref, counts, CONFIG)) == {
        ("x1", "type_mismatch", "high"), ("c1", "type_mismatch", "high"),
        ("x1", "missing", "medium"),  # its None values: 10% missing
    }  # fmt: skip


def test_a_persisting_problem_is_one_episode_closed_after_m_clean_windows(ref: Reference) -> None:
    rng = np.random.default_rng(6)
    lifecycle = QualityLifecycle(CONFIG)
    windows = [with_missing(rng, ref, 0.2) for _ in range(6)] + [
        synthetic.window(rng, ref, SIZE) for _ in range(3)
    ]
    transitions = [
        (i, t.state, t.level, t.result.statistic)
        for i, window in enumerate(windows)
        for t in lifecycle.step(judge_quality(ref, window, CONFIG), i, i + 1)
    ]
    assert transitions == [
        (0, "opened", "medium", "missing"), (0, "opened", "high", "missing"),
        (7, "closed", "medium", "missing"), (7, "closed", "high", "missing"),
    ]  # fmt: skip
    assert lifecycle.open_episodes() == []


def test_a_rate_about_its_threshold_holds_the_episode(ref: Reference) -> None:
    rng = np.random.default_rng(7)
    lifecycle = QualityLifecycle(CONFIG)
    shares = [0.1, 0.04, 0.1, 0.035, 0.09]  # under the margin, over half of it: held
    opened = [
        (t.state, t.level)
        for i, share in enumerate(shares)
        for t in lifecycle.step(judge_quality(ref, with_missing(rng, ref, share), CONFIG), i, i + 1)
    ]
    assert opened == [("opened", "medium")]


def test_a_type_mismatch_has_one_high_episode() -> None:
    feature = FeatureReference("x", True, (50, 50), edges=(0.0, 1.0, 2.0))
    ref = Reference("m", "1", "run", (feature,))
    lifecycle = QualityLifecycle(CONFIG)
    counts = count_batch(ref, 200, {}, {"x": ["1"] * 200})
    transitions = lifecycle.step(judge_quality(ref, counts, CONFIG), 0, 1)
    assert [(t.state, t.level, t.result.statistic) for t in transitions] == [
        ("opened", "high", "type_mismatch")
    ]


def batch_event(hour: int, ages: list[float | None]) -> Any:
    from auditline.events import PredictionBatch

    return PredictionBatch.model_validate({
        "envelope": envelope(datetime(2026, 11, 2, hour, tzinfo=UTC)), "batch_id": f"b{hour}",
        "model_name": "m", "model_version": "1", "location": {"country": "DE"},
        "count": len(ages), "sample_rate": 1.0, "latency_ms": 1.0,
        "numeric_features": [{"name": "age", "values": ages}],
    })  # fmt: skip


def envelope(when: datetime) -> Envelope:
    return Envelope(event_id="00000000-0000-4000-8000-000000000001", event_time=when,
                    producer=ProducerInfo(service="s", instance="i", location={"country": "DE"}),
                    stream="s", sequence=0, prev_hash="0" * 64, hash="0" * 64)  # fmt: skip


def test_the_detector_returns_data_quality_alert_bodies_and_survives_a_restart() -> None:
    rng = np.random.default_rng(8)
    profile = FeatureProfile(name="age", kind=FeatureKind.NUMERIC, count=1_000, missing=0,
                             bin_edges=(0.0, 50.0, 100.0), bin_counts=(500, 500))  # fmt: skip
    feature = FeatureReference.from_profile(profile)
    ref = Reference("m", "1", "run-1", (feature,))
    config = DriftConfig(window_seconds=3600, allowed_lateness_seconds=0)
    detector = DriftDetector(ref, config)
    ages = [float(v) for v in rng.uniform(0, 100, 500)]
    bodies = detector.observe(batch_event(0, [None] * 150 + ages[150:]))
    bodies += detector.observe(batch_event(1, ages))  # releases hour 0
    assert [(alert_model(b), b["check"], b["state"], b["severity"]) for b in bodies] == [
        (DataQualityAlert, "missing", "opened", "medium"),
        (DataQualityAlert, "missing", "opened", "high"),
    ]
    body = bodies[0]
    assert (body["feature"], body["rate"], body["reference_rate"], body["affected"]) == (
        "age", 0.3, 0.0, 150,
    )  # fmt: skip
    assert body["window_count"] == 500 and body["threshold"] == 0.05
    assert body["window_start"].isoformat() == "2026-11-02T00:00:00+00:00"
    alert = DataQualityAlert.model_validate({**body, "envelope": envelope(body["window_end"])})
    assert alert.statistics["p_value"] < 1e-3 and "reference_rate" not in alert.statistics
    line = described(body)
    assert line["kind"] == "DataQualityAlert" and "missing in 30.00%" in line["test"]
    assert "onset" not in line
    # the state as the worker stores it, reloaded: the open episodes carry on and close
    restored = DriftDetector.from_json(ref, config, detector.to_json())
    closed = restored.observe(batch_event(2, ages)) + restored.observe(batch_event(3, ages))
    assert [(b["state"], b["severity"]) for b in closed] == [
        ("closed", "medium"), ("closed", "high"),
    ]  # fmt: skip
    assert {b["alert_id"] for b in closed}.isdisjoint(b["alert_id"] for b in bodies)
    assert restored.open_episodes() == []
    assert alert_model({"statistic": "psi"}) is DriftAlert


def test_state_written_before_the_quality_checks_still_loads(ref: Reference) -> None:
    detector = DriftDetector(ref, CONFIG)
    old = detector.to_json()
    del old["quality"]
    assert DriftDetector.from_json(ref, CONFIG, old).quality.episodes == {}
    stored = ref.to_json()
    for feature in stored["features"]:
        del feature["missing"]  # a reference stored in the worker's table before
    assert Reference.from_json(stored).features[0].missing == 0
    assert Reference.from_json(ref.to_json()) == ref


def test_counts_keep_the_three_item_form_and_read_the_five_item_one() -> None:
    clean = FeatureCounts([1, 2], 3, {"z": 1})
    assert clean.to_json() == [[1, 2], 3, {"z": 1}]  # as stored before the quality counts
    assert FeatureCounts.from_json([[1, 2], 3, {"z": 1}]) == clean
    counted = FeatureCounts([1, 2], 3, {}, out_of_range=4, mismatched=5)
    assert counted.to_json() == [[1, 2], 3, {}, 4, 5]
    window = WindowCounts(10, {"a": counted, "b": clean})
    assert WindowCounts.from_json(window.to_json()) == window
    merged = window.merge(window).features["a"]
    assert (merged.out_of_range, merged.mismatched, merged.missing) == (8, 10, 6)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"quality_alpha": 0}, "quality_alpha"), ({"quality_missing_margin": 0}, "quality_missing_margin"),
     ({"quality_range_rate": 1.5}, "quality_range_rate")],
)  # fmt: skip
def test_thresholds_are_validated(change: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        DriftConfig.model_validate(change)


@pytest.mark.parametrize(
    ("reference", "window"), [(0, 0), (0, 30), (40, 10), (100, 60), (5_000, 2_000)]
)
def test_the_two_proportion_test_agrees_with_its_definition(reference: int, window: int) -> None:
    got = stats.proportion_increase(reference, 20_000, window, 500)
    pooled = (reference + window) / 20_500
    if pooled == 0:
        assert got.p_value == 1.0
        return
    z = (window / 500 - reference / 20_000) / np.sqrt(
        pooled * (1 - pooled) * (1 / 20_000 + 1 / 500)
    )
    assert got.statistic == pytest.approx(z)
    assert got.p_value == pytest.approx(scipy_stats.norm.sf(z), rel=1e-9)


@pytest.mark.parametrize(("k", "lam"), [(0, 0.05), (1, 0.05), (5, 0.05), (3, 2.5), (30, 9.9)])
def test_the_poisson_tail_agrees_with_scipy(k: int, lam: float) -> None:
    assert stats.poisson_tail(k, lam) == pytest.approx(
        scipy_stats.poisson.sf(k - 1, lam), rel=1e-6, abs=1e-14
    )
