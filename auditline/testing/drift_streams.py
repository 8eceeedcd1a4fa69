"""Synthetic model streams with known shifts, for the drift tests and bench/drift_quality.py: 40
numeric N(0, 1) features and 10 categorical ones, a shift applied to x0 or c0 only. ``columns``
gives one window's raw columns, for problems a shift cannot describe (missing values, values of
the other kind), counted with ``count_batch``."""

from __future__ import annotations

import numpy as np

from auditline.drift.reference import FeatureReference, Reference
from auditline.drift.window import WindowCounts, count_batch
from auditline.profiles import categorical_profile, numeric_profile

NUMERIC, CATEGORICAL = 40, 10
CATEGORIES = ("a", "b", "c", "d", "e")
SHARES = np.array([0.40, 0.25, 0.15, 0.12, 0.08])


def reference(rng: np.random.Generator, rows: int = 20_000) -> Reference:
    features = [
        FeatureReference.from_profile(numeric_profile(f"x{i}", rng.normal(size=rows).tolist()))
        for i in range(NUMERIC)
    ]
    features += [
        FeatureReference.from_profile(
            categorical_profile(f"c{i}", rng.choice(CATEGORIES, size=rows, p=SHARES).tolist())
        )
        for i in range(CATEGORICAL)
    ]
    return Reference("m", "1", "run-1", tuple(features))


def window(
    rng: np.random.Generator,
    ref: Reference,
    size: int,
    *,
    mean: float = 0.0,
    scale: float = 1.0,
    shares: np.ndarray = SHARES,
    categories: tuple[str, ...] = CATEGORIES,
) -> WindowCounts:
    """One window; the shift arguments apply to x0 (numeric) or c0 (categorical) only."""
    numeric, categorical = columns(
        rng, size, mean=mean, scale=scale, shares=shares, categories=categories
    )
    return count_batch(ref, size, numeric, categorical)


def columns(
    rng: np.random.Generator,
    size: int,
    *,
    mean: float = 0.0,
    scale: float = 1.0,
    shares: np.ndarray = SHARES,
    categories: tuple[str, ...] = CATEGORIES,
) -> tuple[dict[str, list[float | None]], dict[str, list[str | None]]]:
    """One window's columns (numeric, categorical), the shift arguments on x0 or c0 only."""
    numeric: dict[str, list[float | None]] = {
        f"x{i}": rng.normal(size=size).tolist() for i in range(NUMERIC)
    }
    numeric["x0"] = rng.normal(mean, scale, size=size).tolist()
    categorical: dict[str, list[str | None]] = {
        f"c{i}": rng.choice(CATEGORIES, size=size, p=SHARES).tolist() for i in range(CATEGORICAL)
    }
    categorical["c0"] = rng.choice(categories, size=size, p=shares).tolist()
    return numeric, categorical
