"""The reference a model's predictions are compared with: its training run's feature profiles.

A numeric feature is binned at the training quantile edges (values outside the training range
fall into the first or last bin, as in ``auditline.profiles.bin_counts``); a categorical one
over the training top-k categories plus "other". A category outside the reference is *new*
when the reference had no "other" mass (every training category is known); otherwise it counts
as "other". The prediction distribution (``TrainingRun.prediction_profile``) is one more feature.
Each feature also keeps the training sample's missing count, the data-quality checks' reference
missing rate (``auditline.drift.quality``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from auditline.errors import AuditlineError
from auditline.events import FeatureKind, FeatureProfile, RunStatus, TrainingRun


class ReferenceError(AuditlineError):
    """A training run that cannot serve as a drift reference."""


@dataclass(frozen=True)
class FeatureReference:
    name: str
    numeric: bool
    counts: tuple[int, ...]  # reference histogram over the bins (numeric) or categories + other
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    closed: bool = False  # categorical: no "other" mass in training, so unseen means new
    missing: int = 0  # training values missing (``FeatureProfile.missing``)

    @property
    def bins(self) -> int:
        return len(self.counts)

    @property
    def total(self) -> int:
        """Training values present (binned)."""
        return sum(self.counts)

    @property
    def missing_rate(self) -> float:
        """The share of the training values that were missing."""
        rows = self.total + self.missing
        return self.missing / rows if rows else 0.0

    @cached_property
    def _lower_bounds(self) -> NDArray[np.float64]:
        """The training minimum and the inner edges: values below each (``count_numeric``)."""
        return np.asarray(self.edges[:-1], dtype=np.float64)

    @cached_property
    def _upper_bounds(self) -> NDArray[np.float64]:
        """The training maximum and infinity: values at or below each (NaN sort above both)."""
        return np.asarray([self.edges[-1], np.inf], dtype=np.float64)

    @cached_property
    def category_index(self) -> dict[str, int]:
        """Category -> its slot in ``counts`` (computed once per reference)."""
        return {category: i for i, category in enumerate(self.categories)}

    def count_numeric(self, values: NDArray[np.float64]) -> tuple[list[int], int, int]:
        """(counts per bin, missing, out of range) of ``values``, NaN for missing. Values below
        the first inner edge fall into the first bin, those at or above the last into the last.

        The column is sorted once (a vectorised sort) and the edges are looked up in it: a
        search per edge, not per value, whose branches a processor predicts no better than a
        coin toss over unsorted values (8 µs for 1,000 values instead of 22)."""
        ordered = np.sort(values)  # NaN last
        below = ordered.searchsorted(self._lower_bounds, side="left").tolist()
        at_most_max, present = ordered.searchsorted(self._upper_bounds, side="right").tolist()
        bounds = [0, *below[1:], present]
        counts = [high - low for low, high in pairwise(bounds)]
        return counts, len(values) - present, below[0] + present - at_most_max

    @classmethod
    def from_profile(cls, profile: FeatureProfile, name: str | None = None) -> FeatureReference:
        name = name or profile.name
        if profile.kind == FeatureKind.NUMERIC:
            if len(profile.bin_edges) < 2 or len(profile.bin_counts) != len(profile.bin_edges) - 1:
                raise ReferenceError(
                    f"feature {name!r}: a numeric profile needs bin_edges (2 or more) and one "
                    "count per bin; profile it with auditline.profiles.numeric_profile"
                )
            return cls(
                name, True, tuple(profile.bin_counts), edges=tuple(profile.bin_edges),
                missing=profile.missing,
            )  # fmt: skip
        if profile.kind == FeatureKind.CATEGORICAL:
            if len(profile.categories) != len(profile.category_counts) or not profile.categories:
                raise ReferenceError(
                    f"feature {name!r}: a categorical profile needs categories with one count each"
                )
            counts = (*profile.category_counts, profile.other_count)
            return cls(
                name, False, counts, categories=profile.categories,
                closed=profile.other_count == 0, missing=profile.missing,
            )  # fmt: skip
        raise ReferenceError(f"feature {name!r} has kind {profile.kind.value!r}: not profiled")


PREDICTION = "__prediction__"


@dataclass(frozen=True)
class Reference:
    """What the drift detector needs from a completed training run."""

    model_name: str
    model_version: str
    training_run_id: str
    features: tuple[FeatureReference, ...]

    def feature(self, name: str) -> FeatureReference | None:
        return next((f for f in self.features if f.name == name), None)

    @classmethod
    def from_training_run(cls, run: TrainingRun) -> Reference:
        if run.status != RunStatus.COMPLETED or not run.model_version:
            raise ReferenceError(
                f"training run {run.run_id!r} is {run.status.value}: only a completed run with a "
                "model_version can serve as a drift reference"
            )
        features = [FeatureReference.from_profile(p) for p in run.feature_profiles if p.count]
        if run.prediction_profile is not None and run.prediction_profile.count:
            features.append(FeatureReference.from_profile(run.prediction_profile, PREDICTION))
        if not features:
            raise ReferenceError(
                f"training run {run.run_id!r} carries no feature profiles; record them with "
                "RunHandle.profile_features (and profile_predictions) inside training_run()"
            )
        return cls(run.model_name, run.model_version, run.run_id, tuple(features))

    def to_json(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "training_run_id": self.training_run_id,
            "features": [
                {"name": f.name, "numeric": f.numeric, "counts": list(f.counts),
                 "edges": list(f.edges), "categories": list(f.categories), "closed": f.closed,
                 "missing": f.missing}
                for f in self.features
            ],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reference:
        """Also the form stored before ``missing`` was kept (no training missing values)."""
        features = tuple(
            FeatureReference(
                f["name"],
                f["numeric"],
                tuple(f["counts"]),
                tuple(f["edges"]),
                tuple(f["categories"]),
                f["closed"],
                f.get("missing", 0),
            )
            for f in data["features"]
        )
        return cls(data["model_name"], data["model_version"], data["training_run_id"], features)
