"""The joiner pairs every prediction with its outcome exactly once, whatever the arrival order,
ignoring duplicates and outcomes beyond the horizon, and survives a JSON round trip."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.performance.joiner import Joiner

HORIZON, WINDOW = 10_000, 1_000

Pair = tuple[Any, int, int]  # key, prediction's window, delay


class Recorder(dict[int, Any]):
    """Every window's target: records (the prediction's key, its window, the delay)."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[Pair] = []

    def __missing__(self, window: int) -> Any:
        recorder = self

        class Target:
            def add_pair(self, score: Any, _: Any, delay: int, label: Any, value: Any) -> None:
                key = tuple(score) if isinstance(score, list) else score  # JSON made it a list
                recorder.pairs.append((key, window, delay))  # the score carries the key

        return Target()


def run(events: list[tuple[str, Any]], joiner: Joiner | None = None) -> tuple[Joiner, list[Pair]]:
    joiner = joiner or Joiner(HORIZON, WINDOW)
    recorder = Recorder()
    joiner.targets = recorder
    pairs = recorder.pairs
    for kind, item in events:
        if kind == "single":
            key, p = item
            joiner.add_single(key, p, key, None)  # type: ignore[arg-type]
        elif kind == "batch":
            batch_id, p, rows = item
            joiner.add_batch(batch_id, p, rows, [(batch_id, r) for r in range(rows)], None)  # type: ignore[misc]
        else:
            key, t = item
            if isinstance(key, str):
                joiner.add_outcome(key, t, "1", None)
            else:
                joiner.add_row_outcome(*key, t, "1", None)
    return joiner, pairs


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[str, Any]], set[Pair]]:
    """Predictions (singles and batches) and outcomes for some of them (some beyond the
    horizon, some for predictions never made), duplicated at random, shuffled; the pairs
    expected."""
    events: list[tuple[str, Any]] = []
    expected: set[Pair] = set()
    for i in range(draw(st.integers(0, 8))):
        p = draw(st.integers(0, 5_000))
        events.append(("single", (f"p{i}", p)))
        delay = draw(st.one_of(st.none(), st.integers(0, 2 * HORIZON)))
        if delay is not None:
            events.append(("outcome", (f"p{i}", p + delay)))
            if delay <= HORIZON:
                expected.add((f"p{i}", p - p % WINDOW, delay))
    for b in range(draw(st.integers(0, 3))):
        p, rows = draw(st.integers(0, 5_000)), draw(st.integers(0, 6))
        events.append(("batch", (f"b{b}", p, rows)))
        for row in range(rows):
            delay = draw(st.one_of(st.none(), st.integers(0, 2 * HORIZON)))
            if delay is not None:
                events.append(("outcome", ((f"b{b}", row), p + delay)))
                if delay <= HORIZON:
                    expected.add(((f"b{b}", row), p - p % WINDOW, delay))
    events += [("outcome", ("never-predicted", 100))]
    events += draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    return draw(st.permutations(events)), expected


@settings(max_examples=300, deadline=None)
@given(streams())
def test_each_pair_joins_exactly_once_in_any_order(
    stream: tuple[list[tuple[str, Any]], set[Pair]],
) -> None:
    events, expected = stream
    joiner, pairs = run(events)
    assert len(pairs) == len(set(pairs)), "a pair joined twice"
    assert set(pairs) == expected
    counts = joiner.counts
    assert counts["joined"] == len(expected)
    outcomes = sum(kind == "outcome" for kind, _ in events)
    assert counts["outcomes"] == outcomes
    joiner.expire(None)  # the end: whatever still waits is unmatched
    assert not joiner.singles and not joiner.batches and joiner.waiting == 0
    assert not joiner.pending and not joiner.pending_rows
    accounted = ("joined", "duplicate_outcomes", "beyond_horizon", "unmatched_outcomes")
    assert sum(counts[name] for name in accounted) == outcomes


@settings(max_examples=100, deadline=None)
@given(streams(), st.data())
def test_a_json_round_trip_mid_stream_changes_nothing(
    stream: tuple[list[tuple[str, Any]], set[Pair]], data: st.DataObject
) -> None:
    events, expected = stream
    cut = data.draw(st.integers(0, len(events)))
    joiner, before = run(events[:cut])
    again = Joiner.from_json(json.loads(json.dumps(joiner.to_json())))
    resumed, after = run(events[cut:], again)
    assert set(before) | set(after) == expected
    assert len(before) + len(after) == len(expected)
    assert resumed.to_json()["counts"] == run(events)[0].to_json()["counts"]


def test_outcomes_wait_for_their_prediction_until_their_window_expires() -> None:
    joiner, _ = run([("outcome", ("late", 2_500)), ("outcome", ("gone", 500))])
    joiner.expire(1_000)  # the window [0, 1000) of the outcome "gone" is judged
    assert list(joiner.pending) == ["late"] and joiner.waiting == 1
    assert joiner.counts["unmatched_outcomes"] == 1
    run([("single", ("late", 2_000))], joiner)
    assert joiner.waiting == 0 and joiner.counts["joined"] == 1


def test_expired_predictions_are_forgotten_and_a_full_queue_drops_outcomes() -> None:
    joiner = Joiner(HORIZON, WINDOW, max_pending=1)
    run([("single", ("a", 100)), ("batch", ("b", 1_500, 3))], joiner)
    joiner.expire(1_000)
    assert list(joiner.singles) == [] and list(joiner.batches) == ["b"]
    run([("outcome", ("a", 900)), ("outcome", ("x", 900)), ("outcome", (("b", 7), 1_600))], joiner)
    assert joiner.counts["dropped_outcomes"] == 1  # "x": the queue holds "a" already
    assert joiner.counts["unmatched_outcomes"] == 1  # batch b has no row 7
