"""Mergeable window state: binned counts per feature, in event-time tumbling windows (pure).

``WindowCounts`` are plain sums, so partial counts from several partitions, batches or workers
merge in any order into the same window (``merge`` is associative and commutative; a property
test holds it). ``Windows`` assigns counts to tumbling windows of ``size_ms`` by event time and
releases a window once the watermark (the latest event time seen) has passed its end by the
allowed lateness; counts for a window already released are recorded as late, not added.

Besides the bins, each feature's counts keep what the data-quality checks judge
(``auditline.drift.quality``): values missing, numeric values outside the training range (they
still fall into the first or last bin) and values given under the other kind than the reference's
(a numeric feature sent as a categorical column, or the reverse: *mismatched*, neither binned
nor missing).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from auditline.drift.reference import PREDICTION, FeatureReference, Reference
from auditline.events import Prediction, PredictionBatch

MAX_NEW_CATEGORIES = 50  # distinct new categories kept per feature and window


@dataclass
class FeatureCounts:
    counts: list[int]
    missing: int = 0
    new: dict[str, int] = field(default_factory=dict)  # categories never seen in training
    out_of_range: int = 0  # numeric: below the training minimum or above its maximum
    mismatched: int = 0  # values given under the other kind than the reference's

    @property
    def total(self) -> int:
        """Values binned (present, of the reference's kind)."""
        return sum(self.counts)

    @property
    def values(self) -> int:
        """Every value the window had for the feature: binned, missing or mismatched."""
        return self.total + self.missing + self.mismatched

    def merge(self, other: FeatureCounts) -> FeatureCounts:
        new = dict(self.new)
        for category, count in other.new.items():
            if category in new or len(new) < MAX_NEW_CATEGORIES:
                new[category] = new.get(category, 0) + count
        counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        return FeatureCounts(
            counts, self.missing + other.missing, new,
            self.out_of_range + other.out_of_range, self.mismatched + other.mismatched,
        )  # fmt: skip

    def to_json(self) -> list[Any]:
        """``[counts, missing, new]``, with ``out_of_range`` and ``mismatched`` appended only
        when either is not zero: the three-item form stored before them stays the usual one."""
        if self.out_of_range or self.mismatched:
            return [self.counts, self.missing, self.new, self.out_of_range, self.mismatched]
        return [self.counts, self.missing, self.new]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> FeatureCounts:
        """The three- or five-item form."""
        counts, missing, new, *quality = data
        out_of_range, mismatched = (*quality, 0, 0)[:2]
        return cls(list(counts), missing, dict(new), out_of_range, mismatched)


@dataclass
class WindowCounts:
    predictions: int = 0
    features: dict[str, FeatureCounts] = field(default_factory=dict)

    def merge(self, other: WindowCounts) -> WindowCounts:
        features = dict(self.features)
        for name, counts in other.features.items():
            features[name] = features[name].merge(counts) if name in features else counts
        return WindowCounts(self.predictions + other.predictions, features)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.predictions,
            "f": {k: v.to_json() for k, v in self.features.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowCounts:
        features = {k: FeatureCounts.from_json(v) for k, v in data["f"].items()}
        return cls(data["n"], features)


def count_batch(
    reference: Reference,
    count: int,
    numeric: Mapping[str, Sequence[float | None]],
    categorical: Mapping[str, Sequence[str | None]],
) -> WindowCounts:
    """Counts of ``count`` predictions. A feature absent from the columns of its kind is counted
    from the other kind's column of that name as mismatched (its None values as missing); absent
    from both, it counts as missing."""
    features = {}
    for feature in reference.features:
        if feature.numeric:
            values = numeric.get(feature.name)
            other: Sequence[object] | None = (
                categorical.get(feature.name) if values is None else None
            )
            counts = _numeric(feature, values, count if other is None else 0)
        else:
            labels = categorical.get(feature.name)
            other = numeric.get(feature.name) if labels is None else None
            counts = _categorical(feature, labels, count if other is None else 0)
        if other is not None:
            counts = _mismatched(counts, other)
        features[feature.name] = counts
    return WindowCounts(count, features)


def _mismatched(counts: FeatureCounts, values: Sequence[object]) -> FeatureCounts:
    """The counts of a feature found only under the other kind: its values mismatched."""
    missing = sum(v is None or (isinstance(v, float) and math.isnan(v)) for v in values)
    counts.missing += missing
    counts.mismatched += len(values) - missing
    return counts


def _numeric(
    feature: FeatureReference, values: Sequence[float | None] | None, count: int
) -> FeatureCounts:
    if values is None:
        return FeatureCounts([0] * feature.bins, count)
    counts, missing, outside = feature.count_numeric(_floats(values))
    return FeatureCounts(counts, missing, {}, outside)


def _floats(values: Sequence[float | None]) -> NDArray[np.float64]:
    """A column as an array, None as NaN (one pass over a column without None)."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    try:
        return np.fromiter(values, np.float64, len(values))
    except TypeError:  # None among the values
        return np.fromiter((np.nan if v is None else v for v in values), np.float64, len(values))


def _categorical(
    feature: FeatureReference, values: Sequence[str | None] | None, count: int
) -> FeatureCounts:
    if values is None:
        return FeatureCounts([0] * feature.bins, count)
    index = feature.category_index
    other = feature.bins - 1
    counts, missing = [0] * feature.bins, 0
    new: dict[str, int] = {}
    for category, n in Counter(values).items():
        if category is None:
            missing += n
            continue
        slot = index.get(category, other)
        counts[slot] += n
        if slot == other and feature.closed and len(new) < MAX_NEW_CATEGORIES:
            new[category] = n
    return FeatureCounts(counts, missing, new)


def count_event(reference: Reference, event: Prediction | PredictionBatch) -> WindowCounts:
    """The counts one prediction event adds (its scores or labels as the prediction feature)."""
    prediction = reference.feature(PREDICTION)
    if isinstance(event, PredictionBatch):
        numeric: dict[str, Sequence[float | None]] = {
            c.name: c.values for c in event.numeric_features
        }
        categorical: dict[str, Sequence[str | None]] = {
            c.name: c.values for c in event.categorical_features
        }
        if prediction is not None and prediction.numeric and event.scores:
            numeric[PREDICTION] = event.scores
        elif prediction is not None and not prediction.numeric and event.labels:
            categorical[PREDICTION] = event.labels
        return count_batch(reference, event.count, numeric, categorical)
    numeric = {k: [v] for k, v in event.numeric_features.items()}
    categorical = {k: [v] for k, v in event.categorical_features.items()}
    if prediction is not None:
        if prediction.numeric and event.score is not None:
            numeric[PREDICTION] = [event.score]
        elif not prediction.numeric and event.label is not None:
            categorical[PREDICTION] = [event.label]
    return count_batch(reference, 1, numeric, categorical)


@dataclass
class Windows:
    """Tumbling event-time windows of one model version (JSON-able for a changelog table)."""

    size_ms: int
    lateness_ms: int
    open: dict[int, WindowCounts] = field(default_factory=dict)
    watermark_ms: int = -(2**62)
    released_through_ms: int = -(2**62)  # end of the latest window released
    late: int = 0  # predictions that arrived after their window was released

    def add(self, event_time_ms: int, counts: WindowCounts) -> None:
        start = event_time_ms - event_time_ms % self.size_ms
        if start + self.size_ms <= self.released_through_ms:
            self.late += counts.predictions
            return
        self.open[start] = self.open[start].merge(counts) if start in self.open else counts
        self.watermark_ms = max(self.watermark_ms, event_time_ms)

    def release(self, *, everything: bool = False) -> list[tuple[int, int, WindowCounts]]:
        """Windows whose end the watermark has passed by the lateness: (start, end, counts)."""
        ready = sorted(
            start
            for start in self.open
            if everything or start + self.size_ms + self.lateness_ms <= self.watermark_ms
        )
        out = [(start, start + self.size_ms, self.open.pop(start)) for start in ready]
        if out:
            self.released_through_ms = max(self.released_through_ms, out[-1][1])
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size_ms, "lateness": self.lateness_ms, "watermark": self.watermark_ms,
            "released": self.released_through_ms, "late": self.late,
            "open": {str(k): v.to_json() for k, v in self.open.items()},
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Windows:
        return cls(
            data["size"], data["lateness"],
            {int(k): WindowCounts.from_json(v) for k, v in data["open"].items()},
            data["watermark"], data["released"], data["late"],
        )  # fmt: skip


def merge_all(parts: Iterable[WindowCounts]) -> WindowCounts:
    total = WindowCounts()
    for part in parts:
        total = total.merge(part)
    return total
