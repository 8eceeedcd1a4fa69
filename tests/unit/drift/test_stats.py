"""The drift statistics against direct scipy/numpy computations on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from auditline.drift import stats

counts = st.lists(st.integers(0, 10_000), min_size=2, max_size=30)


def _pair(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    ref = draw(counts.filter(lambda c: sum(c) > 0))
    win = draw(st.lists(st.integers(0, 5_000), min_size=len(ref), max_size=len(ref)))
    return ref, win


pairs = st.composite(_pair)().filter(lambda p: sum(p[1]) > 0)


@settings(max_examples=300, deadline=None)
@given(pair=pairs)
def test_psi_and_js_agree_with_a_direct_computation(pair: tuple[list[int], list[int]]) -> None:
    ref, win = (np.asarray(c, dtype=float) for c in pair)
    p = np.maximum(ref / ref.sum(), stats.PSI_FLOOR)
    q = np.maximum(win / win.sum(), stats.PSI_FLOOR)
    assert stats.psi(*pair) == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=1e-6)
    expected_js = jensenshannon(ref / ref.sum(), win / win.sum(), base=2) ** 2
    assert stats.js(*pair) == pytest.approx(float(expected_js), abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(pair=pairs)
def test_binned_ks_agrees_with_scipy_on_the_expanded_samples(
    pair: tuple[list[int], list[int]],
) -> None:
    """The statistic equals scipy's two-sample KS on samples placed at the bin indices."""
    ref, win = pair
    a = np.repeat(np.arange(len(ref)), ref)
    b = np.repeat(np.arange(len(win)), win)
    assert stats.ks(ref, win).statistic == pytest.approx(sps.ks_2samp(a, b).statistic, abs=1e-6)


@pytest.mark.parametrize("x", [0.05, 0.3, 0.5, 0.8, 1.0, 1.36, 2.0, 3.0, 5.0])
def test_kolmogorov_tail_agrees_with_scipy(x: float) -> None:
    assert stats.kolmogorov_sf(x) == pytest.approx(float(special.kolmogorov(x)), abs=1e-6)


@pytest.mark.parametrize("dof", [1, 2, 3, 9, 20, 100])
@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.0, 10.0, 30.0, 150.0])
def test_chi2_tail_agrees_with_scipy(dof: int, x: float) -> None:
    assert stats.chi2_sf(x, dof) == pytest.approx(float(sps.chi2.sf(x, dof)), abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(pair=pairs)
def test_chi2_homogeneity_agrees_with_scipy(pair: tuple[list[int], list[int]]) -> None:
    table = np.array(pair, dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    result = stats.chi2(*pair)
    if table.shape[1] < 2:
        assert result.p_value == 1.0
        return
    statistic, p_value, _, _ = sps.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-6)
    assert result.p_value == pytest.approx(p_value, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(
    p_values=st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=60),
    q=st.sampled_from([0.001, 0.01, 0.05, 0.2]),
)
def test_benjamini_hochberg_agrees_with_scipy(p_values: list[float], q: float) -> None:
    adjusted = sps.false_discovery_control(np.asarray(p_values), method="bh")
    expected = [bool(a <= q) for a in adjusted]
    got = stats.benjamini_hochberg(p_values, q)
    # scipy's adjusted values may differ from p * m / rank in the last bit: allow ties at q
    for g, e, a in zip(got, expected, adjusted, strict=True):
        assert g == e or abs(a - q) < 1e-12
