"""The worker's model-quality stages without a broker: inputs from prediction and outcome
records, joined by the keyed state as the pure detector joins them, and crashes in the middle of
a batch's writes (a prefix of them reached the changelog, offsets committed batches earlier)
neither lose nor double a pair: the same alerts and the same figures per window."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from auditline.streams import performance as stages
from auditline.streams.tables import JsonTable

from auditline.performance.config import PerformanceConfig, PerformanceSettings
from auditline.performance.degradation import Baseline
from auditline.performance.detector import PerformanceDetector
from auditline.testing.outcome_streams import T0, batch, outcome, single, stream, training_run

CONFIG = PerformanceConfig(
    horizon_seconds=7200, allowed_lateness_seconds=0, min_outcomes=200, join_from="training_run"
)
SETTINGS = PerformanceSettings(defaults=CONFIG)
ACCURACIES = [0.9] * 3 + [0.6] * 3 + [0.9] * 4
RUN = training_run({"accuracy": 0.9, "auc": 0.9})


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


class Crash(Exception):
    pass


class Store(dict[str, Any]):
    """The changelog as it survives: after ``budget`` more writes, the process dies."""

    budget: int | None = None

    def _spend(self) -> None:
        if self.budget is not None:
            if self.budget == 0:
                raise Crash
            self.budget -= 1

    def __setitem__(self, key: str, value: Any) -> None:
        self._spend()
        super().__setitem__(key, value)

    def pop(self, key: str, default: Any = None) -> Any:
        self._spend()
        return super().pop(key, default)


def baselines() -> stages.Baselines:
    found = stages.baseline_of(RUN)
    assert found is not None
    return stages.Baselines({found[0]: found[1]})


def gate(join_from: str = "training_run", known: bool = True) -> stages.Gate:
    config = CONFIG.model_copy(update={"join_from": join_from})
    return stages.Gate(
        baselines() if known else stages.Baselines({}), {}, PerformanceSettings(defaults=config)
    )


def events(seed: int) -> list[Any]:
    """Predictions and outcomes, shuffled within spans of 300 (outcomes before their prediction
    and long after it), a few outcomes sent twice, then a prediction a day later that lets every
    window be judged."""
    rng = np.random.default_rng(seed)
    ordered = list(stream(rng, ACCURACIES, batches=4, rows=100))
    shuffled: list[Any] = []
    for start in range(0, len(ordered), 300):
        span = ordered[start : start + 300]
        shuffled += [span[i] for i in rng.permutation(len(span))]
    repeated = [e for e in shuffled[::97] if e.__class__.__name__ == "Outcome"]
    late = T0 + timedelta(days=1)
    return [*shuffled, *repeated, single("last", late, score=0.9)]


def inputs(seed: int) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for offset, event in enumerate(events(seed)):
        got = stages.input_of(event, Message("in", 0, offset), gate())
        assert got is not None
        found.append((got[0], json.loads(got[1])))
    return found


def run(
    records: list[tuple[str, dict[str, Any]]], crashes: dict[int, int], size: int = 250
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Batches of ``size`` inputs through the stages; at batch ``n`` in ``crashes`` the process
    dies after that many changelog writes of the batch (negative: that many before its last)
    and restarts from the committed offset (committed every other batch)."""
    store: Store = Store()
    alerts: dict[str, dict[str, Any]] = {}
    reports: dict[str, dict[str, Any]] = {}
    committed, generation, position, batch_number = 0, 0, 0, 0
    states = stages.PerformanceStates(JsonTable(store), baselines(), SETTINGS)
    while position < len(records):
        table, raised = states.table, []
        try:
            for version, record in records[position : position + size]:
                raised += states.merge(version, record, generation)
            states.flush()
            # the alerts are spooled before the batch's changelog records can leave the
            # process (no await between), which may then die after any prefix of them
            alerts |= {body["alert_id"]: body for body in raised}
            for state in states._cache.values():
                reports |= {r["window_start"]: r for r in state.detector.take_reports()}
            budget = crashes.pop(batch_number, None)
            if budget is not None:
                store.budget = budget if budget >= 0 else max(0, len(table._dirty) + budget)
            table.flush()
            store.budget = None
            position += size
            batch_number += 1
            if batch_number % 2 == 0:
                committed = position
        except Crash:
            store.budget = None
            generation += 1
            position = committed
            states = stages.PerformanceStates(JsonTable(store), baselines(), SETTINGS)
    assert not crashes, f"batches {sorted(crashes)} never flushed"
    return alerts, sorted(reports.values(), key=lambda r: r["window_start"])


def test_the_keyed_state_joins_as_the_detector_does() -> None:
    detector = PerformanceDetector(Baseline.from_training_run(RUN), CONFIG)
    expected = [a for e in events(5) for a in detector.observe(e)]
    alerts, reports = run(inputs(5), {})
    assert {a["alert_id"] for a in expected} == set(alerts)
    assert [a for a in expected] == [alerts[a["alert_id"]] for a in expected]
    assert {(a["state"], a["metric"]) for a in expected} >= {("opened", "accuracy"),
                                                            ("closed", "accuracy")}  # fmt: skip
    assert [r["joined"] for r in reports] == [r["joined"] for r in detector.take_reports()]
    assert sum(r["joined"] for r in reports) == 4_000  # every outcome once, duplicates not


EVERY = range(16)


@pytest.mark.parametrize(
    "crashes",
    [{1: 0}, {3: 2}, {2: 1, 6: 0, 9: 40}, {b: -1 for b in EVERY}, {b: -2 for b in EVERY},
     {b: -3 for b in EVERY if b % 2}, {b: -5 for b in EVERY if b % 3 == 0}],
)  # fmt: skip
def test_a_crash_mid_flush_neither_loses_nor_doubles_a_pair(crashes: dict[int, int]) -> None:
    records = inputs(6)
    expected_alerts, expected_reports = run(records, {})
    alerts, reports = run(records, dict(crashes))
    assert alerts == expected_alerts
    assert [(r["window_start"], r["joined"], r["predictions"]) for r in reports] == [
        (r["window_start"], r["joined"], r["predictions"]) for r in expected_reports
    ]


def test_judged_windows_leave_the_table() -> None:
    records = inputs(7)
    store = Store()
    states = stages.PerformanceStates(JsonTable(store), baselines(), SETTINGS)
    table = states.table
    for version, record in records:
        states.merge(version, record, 0)
    states.flush()
    table.flush()
    left = sorted(json.loads(key)[1] for key in store)
    assert left == ["m", "p"]  # the meta and the last prediction, whose window is open


def test_inputs_need_a_baseline_and_something_to_judge() -> None:
    message = Message("in", 0, 1)
    assert stages.input_of(single("p1", T0, 0.4), message, gate(known=False)) is None
    assert stages.input_of(single("p1", T0), message, gate()) is None  # no score, no label
    assert stages.input_of(batch("b1", T0, []), message, gate()) is None
    got = stages.input_of(outcome(T0, batch_id="b1", row=3, label="1"), message, gate())
    assert got is not None and got[0] == "m/1"
    assert json.loads(got[1]) == {"k": "r", "id": "b1", "row": 3, "l": "1", "v": None,
                                  "t": int(T0.timestamp() * 1000), "src": "in:0", "o": 1}  # fmt: skip


def test_predictions_join_from_the_first_outcome_by_default_or_never() -> None:
    message, default, never = Message("in", 0, 1), gate("first_outcome"), gate("never")
    scored, known = batch("b1", T0, [0.3]), outcome(T0, batch_id="b0", row=0, label="1")
    assert stages.input_of(scored, message, default) is None  # no outcome of m/1 yet
    assert stages.input_of(known, message, default) is not None
    assert default.active == {"m/1": int(T0.timestamp() * 1000)}
    assert stages.input_of(scored, message, default) is not None
    assert stages.input_of(known, message, never) is None
    assert stages.input_of(scored, message, never) is None


def test_a_version_s_keys_share_its_partition() -> None:
    keys = [stages.state_key("churn/3", "m"), stages.state_key("churn/3", "r", "b|7", 4)]
    assert {stages.partition_of(stages.version_of(k), 6) for k in keys} == {
        stages.partition_of("churn/3", 6)
    }
    assert stages.version_of(keys[1]) == "churn/3"


def test_inputs_travel_in_messages_under_a_size_limit() -> None:
    from auditline.streams.models import chunks

    records = [b"x" * 100] * 25 + [b"y" * 5_000] + [b"z" * 10]
    runs = chunks(records, 1_000)
    assert [r for run in runs for r in run] == records  # all of them, in order
    assert all(sum(len(r) + 1 for r in run) <= 1_001 for run in runs if len(run) > 1)
    assert [b"y" * 5_000] in runs  # one larger than the limit goes alone
