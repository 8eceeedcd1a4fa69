"""Window state merges in any order; windows release by watermark; episodes open and close."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.drift.detector import DriftConfig, FeatureResult, Lifecycle, judge_window
from auditline.drift.reference import FeatureReference, Reference
from auditline.drift.window import WindowCounts, Windows, count_batch, merge_all
from auditline.testing import drift_streams as synthetic

REF = synthetic.reference(np.random.default_rng(7), rows=2_000)


@st.composite
def parts(draw: st.DrawFn) -> list[WindowCounts]:
    seeds = draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6))
    sizes = draw(st.lists(st.integers(1, 300), min_size=len(seeds), max_size=len(seeds)))
    return [
        synthetic.window(np.random.default_rng(seed), REF, size, mean=0.3)
        for seed, size in zip(seeds, sizes, strict=True)
    ]


def binned_one_by_one(edges: list[float], values: list[float | None]) -> tuple[list[int], int, int]:
    """(counts, missing, out of range) by the definition, a value at a time."""
    counts, missing, outside = [0] * (len(edges) - 1), 0, 0
    for value in values:
        if value is None or np.isnan(value):
            missing += 1
            continue
        outside += value < edges[0] or value > edges[-1]
        counts[sum(edge <= value for edge in edges[1:-1])] += 1  # first/last bin beyond them
    return counts, missing, outside


EDGE_VALUES = st.sampled_from([-1.0, 0.0, 0.5, 2.0])  # (some draws repeat an edge)
VALUES = st.one_of(
    st.none(), EDGE_VALUES, st.floats(-3, 3), st.sampled_from([np.inf, -np.inf, np.nan])
)


@settings(max_examples=200, deadline=None)
@given(
    edges=st.lists(st.one_of(EDGE_VALUES, st.floats(-2, 2)), min_size=2, max_size=8),
    values=st.lists(VALUES, max_size=60),
)
def test_a_numeric_column_is_binned_as_value_by_value(
    edges: list[float], values: list[float | None]
) -> None:
    edges = sorted(edges)
    feature = FeatureReference("x", True, (1,) * (len(edges) - 1), edges=tuple(edges))
    reference = Reference("m", "1", "run", (feature,))
    counts = count_batch(reference, len(values), {"x": values}, {}).features["x"]
    assert (counts.counts, counts.missing, counts.out_of_range) == binned_one_by_one(edges, values)


@settings(max_examples=60, deadline=None)
@given(pieces=parts(), order=st.randoms(use_true_random=False))
def test_merging_in_any_order_gives_the_same_statistics(
    pieces: list[WindowCounts], order: object
) -> None:
    shuffled = list(pieces)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    one, two = merge_all(pieces), merge_all(shuffled)
    nested = pieces[0]
    for piece in pieces[1:]:
        nested = piece.merge(nested)  # the other side of each merge
    assert one.to_json() == two.to_json() == nested.to_json()
    config = DriftConfig(min_window_count=1)
    assert judge_window(REF, one, config) == judge_window(REF, two, config)
    assert WindowCounts.from_json(one.to_json()).to_json() == one.to_json()


def test_windows_release_after_the_lateness_and_count_later_arrivals_as_late() -> None:
    part = synthetic.window(np.random.default_rng(1), REF, 10)
    windows = Windows(size_ms=1000, lateness_ms=500)
    windows.add(100, part)
    windows.add(1200, part)
    assert windows.release() == []  # watermark 1200 < 1000 + 500
    windows.add(900, part)  # late but within the lateness: counted in window 0
    windows.add(1600, part)
    released = windows.release()
    assert [(s, e, c.predictions) for s, e, c in released] == [(0, 1000, 20)]
    windows.add(999, part)  # its window is released: late
    assert windows.late == 10
    assert Windows.from_json(windows.to_json()).to_json() == windows.to_json()
    assert [(s, c.predictions) for s, _, c in windows.release(everything=True)] == [(1000, 20)]


def result(level: str | None) -> FeatureResult:
    return FeatureResult("x0", level, "psi", 0.3 if level else 0.0, 0.1, 100, 100, {})


def test_episodes_open_after_k_of_n_and_close_after_m_clean_windows() -> None:
    lifecycle = Lifecycle(DriftConfig(open_k=2, open_n=3, close_m=2))
    steps = [None, "medium", None, "high", "high", None, "medium", None, None, None]
    seen = []
    for i, level in enumerate(steps):
        for t in lifecycle.step([result(level)], i, i + 1):
            seen.append((i, t.state, t.level))
    # medium: drifted at 1 and 3 (2 of 3) -> opens at 3; clean at 5, drift at 6, clean 7, 8 ->
    # closes at 8. high: drifted at 3 and 4 -> opens at 4; clean 5, drift 6 is medium only,
    # so clean 5, 6 -> closes at 6
    assert seen == [
        (3, "opened", "medium"),
        (4, "opened", "high"),
        (6, "closed", "high"),
        (8, "closed", "medium"),
    ]
    again = Lifecycle.from_json(lifecycle.config, lifecycle.to_json())
    assert again.to_json() == lifecycle.to_json()


def test_a_steady_shift_about_the_threshold_is_one_episode() -> None:
    """PSI hovering about psi_warn (crossing it now and then, never far under it) keeps the
    episode open; a return to stationary closes it after close_m windows."""
    from auditline.drift.detector import DriftConfig, FeatureResult, Lifecycle

    config = DriftConfig()
    lifecycle = Lifecycle(config)

    def window(psi: float) -> list[FeatureResult]:
        level = "medium" if psi >= config.psi_warn else None
        return [FeatureResult("age", level, "psi", psi, config.psi_warn, 5000, 500, {"psi": psi})]

    hovering = [0.12, 0.08, 0.11, 0.07, 0.09, 0.13, 0.06, 0.12] * 10  # 80 windows
    states = [t.state for i, psi in enumerate(hovering) for t in lifecycle.step(window(psi), i, i)]
    assert states == ["opened"]
    after = [t.state for i in range(3) for t in lifecycle.step(window(0.01), 100 + i, 100 + i)]
    assert after == ["closed"]
