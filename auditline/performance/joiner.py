"""Predictions joined to their outcomes within a bounded horizon (pure, no numpy).

A prediction is named by its id (a single ``Prediction``) or by its batch and row (a
``PredictionBatch`` row); an ``Outcome`` names one of them. The joiner keeps the predictions of
every window of prediction event time not yet judged, and the outcomes whose prediction it has
not seen yet (``pending``), and pairs each outcome with its prediction **once**:

- a pair joins when the outcome became known at most ``horizon_ms`` after the prediction (an
  outcome known before its prediction, by clock skew, joins; its delay counts as none); a later
  one is counted ``beyond_horizon`` and left out;
- a prediction or an outcome seen again while its first is kept is a duplicate: ignored, counted;
- an outcome that arrives before its prediction waits (``pending``) until the window of its own
  event time is judged, the last moment its prediction could still be accepted; then it counts
  as ``unmatched_outcomes``. Beyond ``max_pending`` waiting outcomes a new one is dropped and
  counted (``dropped_outcomes``): outcomes of predictions never recorded (another version,
  sampled out) cannot grow the state without bound;
- ``expire(through_ms)`` forgets the predictions of the windows ending at or before it (the
  owner judges those windows: an unmatched prediction counts against the window's coverage).

Memory: the predictions of the windows not yet judged, i.e. of about ``horizon + lateness +
window`` of prediction event time (one entry per single prediction, one per batch with a byte per
row), plus at most ``max_pending`` waiting outcomes. The decision whether two events join
depends only on their event times, so any arrival order within the held span gives the same
pairs. JSON-able (``to_json``) for a changelog table. Each pair goes to the accumulator of its
prediction's window, ``targets[window].add_pair(...)`` (the owner's windows: ``PairTarget``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar


class PairTarget(Protocol):
    """What receives the pairs of one window (``metrics.WindowMetrics``)."""

    def add_pair(
        self,
        score: float | None,
        predicted: str | None,
        delay_ms: int,
        label: str | None,
        value: float | None,
    ) -> None: ...


Waiting = tuple[int, str | None, float | None]  # an outcome's time, label and value
V = TypeVar("V")
COUNTERS = (
    "predictions", "outcomes", "joined", "duplicate_predictions", "duplicate_outcomes",
    "beyond_horizon", "unmatched_outcomes", "dropped_outcomes",
)  # fmt: skip


class Batch:
    """A batch's predictions as the joiner keeps them: its time, window, columns and which rows
    have joined (a byte per row)."""

    __slots__ = ("joined", "labels", "scores", "time_ms", "window")

    def __init__(
        self,
        time_ms: int,
        window: int,
        scores: Sequence[float] | None,
        labels: Sequence[str] | None,
        joined: bytearray,
    ) -> None:
        self.time_ms, self.window, self.joined = time_ms, window, joined
        self.scores, self.labels = scores, labels


@dataclass
class Forgotten:
    """What ``Joiner.expire`` forgot: predictions (single ids, batch ids) and the outcomes that
    waited for a prediction in vain (single prediction ids, (batch id, row))."""

    singles: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    row_outcomes: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Joiner:
    horizon_ms: int
    window_ms: int
    max_pending: int = 1_000_000
    # prediction id: [time, window, score, label, joined]
    singles: dict[str, list[Any]] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    # outcomes waiting for their prediction: (time, label, value), by prediction id or batch/row
    pending: dict[str, Waiting] = field(default_factory=dict)
    pending_rows: dict[str, dict[int, Waiting]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    targets: Mapping[int, PairTarget] = field(default_factory=dict, repr=False)  # by window
    # keys by window (rebuilt from the entries' times, not stored): what ``expire`` forgets
    _single_windows: dict[int, list[str]] = field(default_factory=dict, repr=False)
    _batch_windows: dict[int, list[str]] = field(default_factory=dict, repr=False)
    _waiting_singles: dict[int, list[str]] = field(default_factory=dict, repr=False)
    _waiting_batches: dict[int, set[str]] = field(default_factory=dict, repr=False)
    _waiting: int = field(default=0, repr=False)

    def window_of(self, time_ms: int) -> int:
        return time_ms - time_ms % self.window_ms

    @property
    def waiting(self) -> int:
        """Outcomes waiting for their prediction."""
        return self._waiting

    def add_single(
        self, prediction_id: str, time_ms: int, score: float | None, label: str | None
    ) -> bool:
        """Keep one prediction; False for a duplicate."""
        if prediction_id in self.singles:
            self.counts["duplicate_predictions"] += 1
            return False
        window = self.window_of(time_ms)
        entry = [time_ms, window, score, label, False]
        self.singles[prediction_id] = entry
        self._single_windows.setdefault(window, []).append(prediction_id)
        self.counts["predictions"] += 1
        waiting = self.pending.pop(prediction_id, None) if self.pending else None
        if waiting is not None:
            self._waiting -= 1
            self._join_single(entry, *waiting)
        return True

    def add_batch(
        self,
        batch_id: str,
        time_ms: int,
        count: int,
        scores: Sequence[float] | None,
        labels: Sequence[str] | None,
    ) -> bool:
        """Keep a batch's ``count`` predictions; False for a duplicate batch."""
        if batch_id in self.batches:
            self.counts["duplicate_predictions"] += count
            return False
        batch = Batch(time_ms, self.window_of(time_ms), scores or None, labels or None,
                      bytearray(count))  # fmt: skip
        self.batches[batch_id] = batch
        self._batch_windows.setdefault(batch.window, []).append(batch_id)
        self.counts["predictions"] += count
        waiting = self.pending_rows.pop(batch_id, None) if self.pending_rows else None
        if waiting is not None:
            self._waiting -= len(waiting)
            for row, (known_ms, label, value) in waiting.items():
                self._join_row(batch, row, known_ms, label, value)
        return True

    def add_outcome(
        self, prediction_id: str, time_ms: int, label: str | None, value: float | None
    ) -> bool:
        """An outcome of the single prediction ``prediction_id``; True when it is kept (joined
        or waiting), False when it is left out (a duplicate, beyond the horizon, no room)."""
        counts = self.counts
        counts["outcomes"] += 1
        entry = self.singles.get(prediction_id)
        if entry is None:
            if prediction_id in self.pending:
                counts["duplicate_outcomes"] += 1
            elif self._room():
                self.pending[prediction_id] = (time_ms, label, value)
                self._waiting += 1
                self._waiting_singles.setdefault(self.window_of(time_ms), []).append(prediction_id)
                return True
            return False
        if entry[4]:
            counts["duplicate_outcomes"] += 1
            return False
        return self._join_single(entry, time_ms, label, value)

    def add_row_outcome(
        self, batch_id: str, row: int, time_ms: int, label: str | None, value: float | None
    ) -> bool:
        """An outcome of row ``row`` of batch ``batch_id``; True when it is kept (joined or
        waiting). The hot path: ``_join_row`` inline."""
        counts = self.counts
        counts["outcomes"] += 1
        batch = self.batches.get(batch_id)
        if batch is None:
            return self._wait_row(batch_id, row, time_ms, label, value)
        joined = batch.joined
        if row < len(joined) and not joined[row] and time_ms - batch.time_ms <= self.horizon_ms:
            joined[row] = 1
            counts["joined"] += 1
            scores, labels = batch.scores, batch.labels
            self.targets[batch.window].add_pair(
                scores[row] if scores else None, labels[row] if labels else None,
                time_ms - batch.time_ms, label, value,
            )  # fmt: skip
            return True
        return self._join_row(batch, row, time_ms, label, value)  # counts why it did not join

    def _wait_row(
        self, batch_id: str, row: int, time_ms: int, label: str | None, value: float | None
    ) -> bool:
        rows = self.pending_rows.get(batch_id)
        if rows is not None and row in rows:
            self.counts["duplicate_outcomes"] += 1
        elif self._room():
            if rows is None:
                rows = self.pending_rows[batch_id] = {}
            rows[row] = (time_ms, label, value)
            self._waiting += 1
            self._waiting_batches.setdefault(self.window_of(time_ms), set()).add(batch_id)
            return True
        return False

    def _room(self) -> bool:
        if self._waiting < self.max_pending:
            return True
        self.counts["dropped_outcomes"] += 1
        return False

    def _join_single(
        self, entry: list[Any], time_ms: int, label: str | None, value: float | None
    ) -> bool:
        if time_ms - entry[0] > self.horizon_ms:
            self.counts["beyond_horizon"] += 1
            return False
        entry[4] = True
        self.counts["joined"] += 1
        self.targets[entry[1]].add_pair(entry[2], entry[3], time_ms - entry[0], label, value)
        return True

    def _join_row(
        self, batch: Batch, row: int, time_ms: int, label: str | None, value: float | None
    ) -> bool:
        joined = batch.joined
        if row >= len(joined):
            self.counts["unmatched_outcomes"] += 1  # no such row: it can never join
        elif joined[row]:
            self.counts["duplicate_outcomes"] += 1
        elif time_ms - batch.time_ms > self.horizon_ms:
            self.counts["beyond_horizon"] += 1
        else:
            joined[row] = 1
            self.counts["joined"] += 1
            scores, labels = batch.scores, batch.labels
            self.targets[batch.window].add_pair(
                scores[row] if scores else None, labels[row] if labels else None,
                time_ms - batch.time_ms, label, value,
            )  # fmt: skip
            return True
        return False

    def expire(self, through_ms: int | None) -> Forgotten:
        """Forget the predictions of windows ending at or before ``through_ms`` (None: all) and
        the outcomes waiting in them (counted as unmatched): what was forgotten."""
        forgotten = Forgotten()
        for ids in _ended(self._single_windows, self.window_ms, through_ms).values():
            for prediction_id in ids:
                del self.singles[prediction_id]
            forgotten.singles += ids
        for batch_ids in _ended(self._batch_windows, self.window_ms, through_ms).values():
            for batch_id in batch_ids:
                del self.batches[batch_id]
            forgotten.batches += batch_ids
        for window, ids in _ended(self._waiting_singles, self.window_ms, through_ms).items():
            for prediction_id in ids:
                if self._forget(self.pending, prediction_id, window):
                    forgotten.outcomes.append(prediction_id)
        for window, waiting in _ended(self._waiting_batches, self.window_ms, through_ms).items():
            for batch_id in waiting:
                forgotten.row_outcomes += self._forget_rows(batch_id, window)
        return forgotten

    def _forget_rows(self, batch_id: str, window: int) -> list[tuple[str, int]]:
        rows = self.pending_rows.get(batch_id)
        if rows is None:
            return []
        forgotten = [(batch_id, row) for row in list(rows) if self._forget(rows, row, window)]
        if not rows:
            del self.pending_rows[batch_id]
        return forgotten

    def _forget(self, place: dict[Any, Waiting], slot: Any, window: int) -> bool:
        """An outcome of ``window`` still waiting for its prediction: it never met it."""
        waiting = place.get(slot)
        if waiting is not None and self.window_of(waiting[0]) == window:
            del place[slot]
            self._waiting -= 1
            self.counts["unmatched_outcomes"] += 1
            return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon_ms, "window": self.window_ms, "max_pending": self.max_pending,
            "singles": {k: [v[0], v[2], v[3], v[4]] for k, v in self.singles.items()},
            "batches": {
                k: [b.time_ms, list(b.scores or ()), list(b.labels or ()),
                    [i for i, joined in enumerate(b.joined) if joined], len(b.joined)]
                for k, b in self.batches.items()
            },
            "pending": [
                *([k, None, None, *v] for k, v in self.pending.items()),
                *([None, b, row, *v] for b, rows in self.pending_rows.items()
                  for row, v in rows.items()),
            ],
            "counts": dict(self.counts),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Joiner:
        joiner = cls(data["horizon"], data["window"], data["max_pending"])
        window_of = joiner.window_of
        for k, (t, score, label, joined) in data["singles"].items():
            joiner.singles[k] = [t, window_of(t), score, label, joined]
            joiner._single_windows.setdefault(window_of(t), []).append(k)
        for k, (t, scores, labels, joined, count) in data["batches"].items():
            flags = bytearray(count)
            for row in joined:
                flags[row] = 1
            joiner.batches[k] = Batch(t, window_of(t), scores or None, labels or None, flags)
            joiner._batch_windows.setdefault(window_of(t), []).append(k)
        for prediction_id, batch_id, row, t, label, value in data["pending"]:
            joiner._waiting += 1
            if prediction_id is not None:
                joiner.pending[prediction_id] = (t, label, value)
                joiner._waiting_singles.setdefault(window_of(t), []).append(prediction_id)
            else:
                joiner.pending_rows.setdefault(batch_id, {})[row] = (t, label, value)
                joiner._waiting_batches.setdefault(window_of(t), set()).add(batch_id)
        joiner.counts = {name: int(data["counts"].get(name, 0)) for name in COUNTERS}
        return joiner


def _ended(index: dict[int, V], window_ms: int, through_ms: int | None) -> dict[int, V]:
    """The windows of ``index`` ending at or before ``through_ms`` (None: all), taken out."""
    ended = [w for w in index if through_ms is None or w + window_ms <= through_ms]
    return {window: index.pop(window) for window in ended}
