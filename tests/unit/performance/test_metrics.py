"""Window metrics against reference computations written out independently (numpy, scipy)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from auditline.performance.metrics import WindowMetrics, auc


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.5, 0.75, 1.0]), min_size=1, max_size=40),
    st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=1, max_size=40),
)
def test_auc_is_the_mann_whitney_statistic_with_ties(pos: list[float], neg: list[float]) -> None:
    u = mannwhitneyu(pos, neg, alternative="two-sided").statistic
    assert auc(pos, neg) == pytest.approx(u / (len(pos) * len(neg)), abs=1e-12)


def test_classification_and_regression_against_references() -> None:
    rng = np.random.default_rng(7)
    n = 5_000
    scores = rng.random(n)
    truth = rng.random(n) < scores  # a calibrated scorer
    values = scores * 10 + rng.normal(size=n)
    delays = rng.exponential(900.0, n) * 1000
    window = WindowMetrics()
    window.add_predictions(n + 100, scores)  # 100 predictions without an outcome
    for s, y, d in zip(scores, truth, delays, strict=True):
        window.add_pair(float(s), None, int(d), "1" if y else "0", None)
    said = scores >= 0.5
    metrics = window.metrics()
    assert metrics["accuracy"] == (pytest.approx(np.mean(said == truth)), n)
    assert metrics["precision"][0] == pytest.approx(np.sum(said & truth) / np.sum(said))
    assert metrics["recall"][0] == pytest.approx(np.sum(said & truth) / np.sum(truth))
    u = mannwhitneyu(scores[truth], scores[~truth]).statistic
    assert metrics["auc"][0] == pytest.approx(u / (truth.sum() * (~truth).sum()))
    summary = window.summary()
    assert summary["coverage"] == pytest.approx(n / (n + 100))
    assert summary["label_delay_p50_s"] == pytest.approx(np.median(delays) / 1000, rel=0.01)
    assert summary["expected_accuracy"] == pytest.approx(np.mean(np.maximum(scores, 1 - scores)))

    regression = WindowMetrics()
    for s, v in zip(scores * 10, values, strict=True):
        regression.add_pair(float(s), None, 0, None, float(v))
    errors = scores * 10 - values
    assert regression.metrics()["mae"][0] == pytest.approx(np.mean(np.abs(errors)))
    assert regression.metrics()["rmse"][0] == pytest.approx(math.sqrt(np.mean(errors**2)))


def test_predicted_labels_decide_accuracy_for_many_classes() -> None:
    window = WindowMetrics()
    for predicted, label in [("a", "a"), ("b", "a"), ("c", "c"), ("1", "1"), ("1", "0")]:
        window.add_pair(None, predicted, 0, label, None)
    metrics = window.metrics()
    assert metrics["accuracy"] == (pytest.approx(3 / 5), 5)
    assert metrics["precision"] == (pytest.approx(1 / 2), 2)  # "1" said twice, right once
    assert metrics["recall"] == (pytest.approx(1.0), 1)
    assert "auc" not in metrics and "mae" not in metrics


def test_a_json_round_trip_keeps_every_figure() -> None:
    window = WindowMetrics()
    window.add_predictions(3, [0.9, 0.2, 0.6])
    window.add_pair(0.9, None, 5_000, "1", 1.0)
    window.add_pair(0.2, None, 60_000, "1", 0.0)
    again = WindowMetrics.from_json(json.loads(json.dumps(window.to_json())))
    assert again == window and again.summary() == window.summary()
