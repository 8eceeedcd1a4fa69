"""Drift statistics over binned counts (pure; numpy, no scipy).

Every statistic compares a reference histogram (from training) with a window histogram over the
same bins:

- ``psi``: population stability index, ``sum((q - p) * ln(q / p))`` over proportions floored at
  ``PSI_FLOOR`` (empty bins would make it infinite);
- ``js``: Jensen-Shannon divergence in bits (0 = same, 1 = disjoint);
- ``ks``: two-sample Kolmogorov-Smirnov statistic over the bins' cumulative proportions, with
  the asymptotic p-value (Stephens' small-sample correction). Binning makes it conservative;
- ``chi2``: chi-squared test of homogeneity of the 2 x k table (reference row, window row),
  so the reference's own sampling noise is accounted for;
- ``trend``: the two-sample test of the mean bin rank over the same ordered bins (the
  Cochran-Armitage trend test's z): the location of a numeric feature, signed, standard normal
  while the window matches the reference, both rows' sampling noise counted;
- ``normal_quantile``: a p-value as the standard normal quantile it exceeds, so that any test's
  evidence can be summed across windows (``auditline.drift.sequential``);
- ``proportion_increase``: the one-sided two-proportion z test that a window's rate (of missing
  values) exceeds the reference's, both samples' noise counted (pooled);
- ``poisson_tail``: P(X >= k) for a Poisson count X of mean ``lam`` (values outside the training
  range; ``auditline.drift.quality``).

``benjamini_hochberg`` controls the false discovery rate across the features of one window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

PSI_FLOOR = 1e-4


def _proportions(counts: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    return array / total if total > 0 else np.full(array.shape, 1.0 / max(array.size, 1))


def psi(reference: ArrayLike, window: ArrayLike) -> float:
    p = np.maximum(_proportions(reference), PSI_FLOOR)
    q = np.maximum(_proportions(window), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def js(reference: ArrayLike, window: ArrayLike) -> float:
    p, q = _proportions(reference), _proportions(window)
    m = (p + q) / 2

    def kl(a: NDArray[np.float64]) -> float:
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log2(a[nonzero] / m[nonzero])))

    return max(0.0, (kl(p) + kl(q)) / 2)


@dataclass(frozen=True)
class Test:
    statistic: float
    p_value: float


def ks(reference: ArrayLike, window: ArrayLike) -> Test:
    ref, win = np.asarray(reference, dtype=np.float64), np.asarray(window, dtype=np.float64)
    n, m = ref.sum(), win.sum()
    if n == 0 or m == 0:
        return Test(0.0, 1.0)
    d = float(np.max(np.abs(np.cumsum(ref) / n - np.cumsum(win) / m)))
    en = math.sqrt(n * m / (n + m))
    return Test(d, kolmogorov_sf((en + 0.12 + 0.11 / en) * d))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution: 2 * sum((-1)^(j-1) * exp(-2 j^2 x^2))."""
    if x <= 0:
        return 1.0
    if x < 0.2:  # the alternating series converges slowly here; the tail is 1 to 1e-8
        return 1.0
    total = 0.0
    for j in range(1, 101):
        term = math.exp(-2.0 * j * j * x * x)
        total += term if j % 2 else -term
        if term < 1e-16:
            break
    return min(1.0, max(0.0, 2.0 * total))


def chi2(reference: ArrayLike, window: ArrayLike) -> Test:
    table = np.vstack(
        [np.asarray(reference, dtype=np.float64), np.asarray(window, dtype=np.float64)]
    )
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(rows == 0):
        return Test(0.0, 1.0)
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return Test(statistic, chi2_sf(statistic, table.shape[1] - 1))


def trend(reference: ArrayLike, window: ArrayLike) -> Test:
    """The window's mean bin rank against the reference's, in standard errors of the difference
    (pooled variance of the ranks, 1/n + 1/N): ``statistic`` is z (positive: the window sits
    higher), ``p_value`` two-sided."""
    ref, win = np.asarray(reference, dtype=np.float64), np.asarray(window, dtype=np.float64)
    n, m = ref.sum(), win.sum()
    if n == 0 or m == 0 or ref.size < 2:
        return Test(0.0, 1.0)
    ranks = np.arange(ref.size, dtype=np.float64)
    pooled = (ref + win) / (n + m)
    centre = float(pooled @ ranks)
    variance = float(pooled @ (ranks - centre) ** 2)
    if variance <= 0:
        return Test(0.0, 1.0)
    z = float((win @ ranks) / m - (ref @ ranks) / n) / math.sqrt(variance * (1 / n + 1 / m))
    return Test(z, min(1.0, math.erfc(abs(z) / math.sqrt(2))))


MAX_QUANTILE = 8.0  # a p-value below ~1e-15 adds no more evidence than this per window


def normal_quantile(p_value: float) -> float:
    """z with P(Z > z) = ``p_value`` for a standard normal Z, within ±``MAX_QUANTILE``."""
    p = min(max(p_value, 1e-15), 1 - 1e-15)
    return max(-MAX_QUANTILE, min(MAX_QUANTILE, NormalDist().inv_cdf(1 - p)))


def proportion_increase(reference: int, reference_n: int, window: int, window_n: int) -> Test:
    """z of the window's rate ``window / window_n`` above the reference's, in standard errors of
    the difference under the pooled rate; ``p_value`` one-sided (the window's higher)."""
    if reference_n <= 0 or window_n <= 0:
        return Test(0.0, 1.0)
    pooled = (reference + window) / (reference_n + window_n)
    variance = pooled * (1 - pooled) * (1 / reference_n + 1 / window_n)
    if variance <= 0:  # both rates 0, or both 1: no evidence either way
        return Test(0.0, 1.0)
    z = (window / window_n - reference / reference_n) / math.sqrt(variance)
    return Test(z, 0.5 * math.erfc(z / math.sqrt(2)))


def poisson_tail(k: int, lam: float) -> float:
    """P(X >= k) for X Poisson with mean ``lam``: the regularised lower gamma P(k, lam), i.e.
    1 - Q(k, lam). Below about 1e-15 it reads 0 (the series' precision)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    return max(0.0, 1.0 - _gamma_q(float(k), lam))


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for chi-squared with ``dof`` degrees of freedom (regularised upper gamma)."""
    if x <= 0:
        return 1.0
    return _gamma_q(dof / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x): series below a + 1, continued fraction above."""
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[bool]:
    """Which hypotheses are rejected at false discovery rate ``q`` (step-up procedure)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff = 0
    for rank, index in enumerate(order, start=1):
        if p_values[index] <= rank * q / m:
            cutoff = rank
    rejected = [False] * m
    for index in order[:cutoff]:
        rejected[index] = True
    return rejected
