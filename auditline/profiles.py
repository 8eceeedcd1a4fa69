"""Reference feature profiles from training data (pure, bounded size, no numpy needed).

Numeric features: quantile bin edges (``bins`` + 1, ascending, deduplicated) with counts per
bin, mean and standard deviation. Categorical: the ``top_k`` most frequent categories with their
counts, and the count of all others. Missing values (None, NaN) are counted apart.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from auditline.events import FeatureKind, FeatureProfile


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def numeric_profile(name: str, values: Iterable[Any], bins: int = 10) -> FeatureProfile:
    values = list(values)
    present = sorted(float(v) for v in values if not _missing(v))
    missing = len(values) - len(present)
    if not present:
        return FeatureProfile(name=name, kind=FeatureKind.NUMERIC, count=0, missing=missing)
    n = len(present)
    edges = sorted({present[min(n - 1, round(q * (n - 1) / bins))] for q in range(bins + 1)})
    counts = bin_counts(edges, present)
    mean = math.fsum(present) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in present) / n)
    return FeatureProfile(
        name=name, kind=FeatureKind.NUMERIC, count=n, missing=missing,
        bin_edges=tuple(edges), bin_counts=tuple(counts), mean=mean, std=std,
    )  # fmt: skip


def bin_counts(edges: Sequence[float], values: Iterable[float]) -> list[int]:
    """Counts per bin ``[edges[i], edges[i+1])``, the last bin closed; outside values clamp."""
    counts = [0] * max(len(edges) - 1, 1)
    inner = edges[1:-1]
    for value in values:
        counts[bisect_right(inner, value)] += 1
    return counts


def categorical_profile(name: str, values: Iterable[Any], top_k: int = 20) -> FeatureProfile:
    counter: Counter[str] = Counter()
    missing = 0
    for value in values:
        if _missing(value):
            missing += 1
        else:
            counter[str(value)] += 1
    top = counter.most_common(top_k)
    kept = sum(count for _, count in top)
    return FeatureProfile(
        name=name, kind=FeatureKind.CATEGORICAL, count=sum(counter.values()), missing=missing,
        categories=tuple(c for c, _ in top), category_counts=tuple(n for _, n in top),
        other_count=sum(counter.values()) - kept,
    )  # fmt: skip


def profile_columns(
    columns: dict[str, Sequence[Any]], categorical: Iterable[str] = ()
) -> tuple[FeatureProfile, ...]:
    """Profiles of named columns; those in ``categorical`` (or holding str) are categorical."""
    categorical = set(categorical)
    profiles = []
    for name, values in columns.items():
        is_text = any(isinstance(v, str) for v in values[:100])
        if name in categorical or is_text:
            profiles.append(categorical_profile(name, values))
        else:
            profiles.append(numeric_profile(name, values))
    return tuple(profiles)
