"""Quality metrics of one window of predictions joined to their outcomes (pure; AUC: numpy).

A ``WindowMetrics`` accumulates the pairs whose *prediction* falls in the window:

- classification, from an outcome ``label``: the predicted class is the prediction's label, or
  without one ``positive_label`` when its score is at least ``decision_threshold`` (a binary
  scorer). ``accuracy`` = correct / labelled; ``precision`` and ``recall`` for ``positive_label``;
  ``auc`` from the scores of the pairs with a score (the Mann-Whitney rank statistic with
  mid-ranks for ties: the chance that a positive scores above a negative, ties counting one half);
- regression, from an outcome ``value`` and the prediction's score: ``mae``, ``rmse``;
- ``coverage``: pairs joined over the window's predictions (an unmatched one counts against it);
- ``label_delay_p50_s``: the median of outcome time minus prediction time, from a histogram of
  log-spaced buckets (1% apart: within 1% of the exact median);
- ``expected_accuracy``: without labels, the mean of max(s, 1 - s) over the window's scored
  predictions, the accuracy a calibrated binary scorer expects of itself (as NannyML's
  confidence-based estimation does, without its calibration step): a statistic, never alerted on.

Each metric's ``samples`` says how many pairs it rests on (precision: predicted positives;
recall: actual positives), which ``degradation`` holds against ``min_outcomes``. Memory: counters,
the delay histogram (a few hundred buckets at most) and, for AUC, one float per scored pair.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BUCKETS_PER_E = 100.0  # log1p(delay seconds) * this: buckets 1% apart


@dataclass
class WindowMetrics:
    predictions: int = 0
    joined: int = 0
    labelled: int = 0  # pairs with a true label and a predicted class
    correct: int = 0
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    positive_scores: array[float] = field(default_factory=lambda: array("d"))
    negative_scores: array[float] = field(default_factory=lambda: array("d"))
    regressed: int = 0  # pairs with a true value and a score
    absolute_error: float = 0.0
    squared_error: float = 0.0
    delays: dict[int, int] = field(default_factory=dict)  # log bucket: pairs
    scored: int = 0  # predictions with a score (the expected accuracy's)
    confidence: float = 0.0  # sum of max(s, 1 - s) over them
    positive_label: str = field(default="1", kw_only=True)  # settings, not state
    decision_threshold: float = field(default=0.5, kw_only=True)

    def add_pair(
        self,
        score: float | None,
        predicted: str | None,
        delay_ms: int,
        label: str | None,
        value: float | None,
    ) -> None:
        """One prediction joined to its outcome (one call per pair: kept flat)."""
        self.joined += 1
        bucket = int(math.log1p(delay_ms / 1000) * BUCKETS_PER_E) if delay_ms > 0 else 0
        delays = self.delays
        delays[bucket] = delays.get(bucket, 0) + 1
        if value is not None and score is not None:
            error = score - value
            self.regressed += 1
            self.absolute_error += abs(error)
            self.squared_error += error * error
        if label is None:
            return
        actual = label == self.positive_label
        if score is not None:
            (self.positive_scores if actual else self.negative_scores).append(score)
        if predicted is not None:
            said = predicted == self.positive_label
            self.correct += predicted == label
        elif score is not None:
            said = score >= self.decision_threshold
            self.correct += said == actual
        else:
            return
        self.labelled += 1
        if said:
            if actual:
                self.true_positive += 1
            else:
                self.false_positive += 1
        elif actual:
            self.false_negative += 1

    def add_predictions(self, count: int, scores: Any = None) -> None:
        """``count`` predictions of the window; ``scores`` (a sequence, or None) for the
        expected accuracy."""
        self.predictions += count
        if scores is not None and len(scores):
            values = np.asarray(scores, dtype=np.float64)
            self.scored += len(values)
            self.confidence += float(np.maximum(values, 1.0 - values).sum())

    def summary(self) -> dict[str, float]:
        """The window's metrics (only those it has pairs for) and counts."""
        out: dict[str, float] = {
            "predictions": float(self.predictions), "joined": float(self.joined),
            "coverage": self.joined / self.predictions if self.predictions else 0.0,
            "label_delay_p50_s": self.delay_p50_s(),
        }  # fmt: skip
        if self.scored:
            out["expected_accuracy"] = self.confidence / self.scored
        for metric, (value, samples) in self.metrics().items():
            out[metric], out[f"{metric}_samples"] = value, float(samples)
        return out

    def metrics(self) -> dict[str, tuple[float, int]]:
        """Each metric the window has pairs for: (value, the pairs it rests on)."""
        found: dict[str, tuple[float, int]] = {}
        if self.labelled:
            found["accuracy"] = (self.correct / self.labelled, self.labelled)
        said = self.true_positive + self.false_positive
        if said:
            found["precision"] = (self.true_positive / said, said)
        actual = self.true_positive + self.false_negative
        if actual:
            found["recall"] = (self.true_positive / actual, actual)
        if self.positive_scores and self.negative_scores:
            samples = len(self.positive_scores) + len(self.negative_scores)
            found["auc"] = (auc(self.positive_scores, self.negative_scores), samples)
        if self.regressed:
            found["mae"] = (self.absolute_error / self.regressed, self.regressed)
            found["rmse"] = (math.sqrt(self.squared_error / self.regressed), self.regressed)
        return found

    def delay_p50_s(self) -> float:
        """The median label delay in seconds (the middle bucket's centre; 0 without pairs)."""
        total, seen = sum(self.delays.values()), 0
        for bucket in sorted(self.delays):
            seen += self.delays[bucket]
            if 2 * seen >= total:
                return math.expm1((bucket + 0.5) / BUCKETS_PER_E)
        return 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.predictions, "joined": self.joined, "labelled": self.labelled,
            "correct": self.correct,
            "tp_fp_fn": [self.true_positive, self.false_positive, self.false_negative],
            "pos": self.positive_scores.tolist(), "neg": self.negative_scores.tolist(),
            "regressed": self.regressed, "abs": self.absolute_error, "sq": self.squared_error,
            "delays": {str(k): v for k, v in self.delays.items()},
            "scored": self.scored, "confidence": self.confidence,
        }  # fmt: skip

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], positive_label: str = "1", decision_threshold: float = 0.5
    ) -> WindowMetrics:
        tp, fp, fn = data["tp_fp_fn"]
        return cls(
            data["n"], data["joined"], data["labelled"], data["correct"], tp, fp, fn,
            array("d", data["pos"]), array("d", data["neg"]), data["regressed"], data["abs"],
            data["sq"], {int(k): v for k, v in data["delays"].items()}, data["scored"],
            data["confidence"], positive_label=positive_label,
            decision_threshold=decision_threshold,
        )  # fmt: skip


def auc(positive: Any, negative: Any) -> float:
    """Area under the ROC curve from scores: the Mann-Whitney U of the positives over
    n_pos * n_neg, with mid-ranks for ties."""
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="stable")
    ordered = both[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(ordered)])
    ranks = np.empty(len(both), dtype=np.float64)
    ranks[order] = np.repeat(starts + (sizes + 1) / 2.0, sizes)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))
