"""Model-quality throughput: predictions joined to their outcomes and judged, beside a raw numpy
baseline doing the same join and metrics in the same run.

detector = ``PerformanceDetector.observe`` over 1,000 ``PredictionBatch`` events of 1,000 scored
           predictions (a day of event time, windows of an hour) and their 1,000,000 ``Outcome``
           events (a label each, known an exponential delay of mean 30 min later), batches and
           outcomes shuffled together (about half the outcomes arrive before their
           prediction and wait), then every window judged (accuracy, precision, recall, AUC,
           label delay, coverage, degradation and episodes)
raw      = the same join over arrays (integer keys, a sort-merge with ``searchsorted``, first
           outcome per key kept, the horizon checked) and the same metrics per window with
           numpy (bincounts, mid-rank AUC, median delay): the floor any implementation pays

Events are built outside the timing, a chunk at a time (a million pydantic events would take
gigabytes). One core, no broker, no decoding (bench/codec.py measures that). Ends with one JSON
line: outcomes per CPU second of each, ``ratio`` = detector / raw, CPU microseconds per outcome,
and the largest difference between the two's window accuracies and AUCs (0: they agree).
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
from _report import report

from auditline.events import Envelope, Outcome, PredictionBatch
from auditline.performance.config import PerformanceConfig
from auditline.performance.degradation import Baseline
from auditline.performance.detector import PerformanceDetector
from auditline.performance.metrics import auc
from auditline.testing.outcome_streams import T0, batch, training_run

BATCHES, SIZE, WINDOW_S, DELAY_S, CHUNK = 1_000, 1_000, 3600, 1800.0, 100_000
SPAN_S = 24 * 3600
ENVELOPE = batch("x", T0, []).envelope


class Stream:
    """The synthetic day as arrays: per prediction its batch, time, score and true label; per
    outcome its time; then one shuffled order of batches (-1 - index) and outcomes (index)."""

    def __init__(self, rng: np.random.Generator) -> None:
        n = BATCHES * SIZE
        self.batch_s = np.sort(rng.uniform(0, SPAN_S, BATCHES))
        self.scores = rng.random(n)
        self.truth = rng.random(n) < np.clip(self.scores * 1.2 - 0.1, 0, 1)
        self.time_ms = np.repeat((self.batch_s * 1000).astype(np.int64), SIZE)
        self.known_ms = self.time_ms + (rng.exponential(DELAY_S, n) * 1000).astype(np.int64)
        self.order = rng.permutation(np.r_[-1 - np.arange(BATCHES), np.arange(n)])

    def events(self, part: np.ndarray) -> list[PredictionBatch | Outcome]:
        out: list[PredictionBatch | Outcome] = []
        labels = ("0", "1")
        for i in part.tolist():
            if i < 0:
                b = -1 - i
                when = T0 + timedelta(seconds=float(self.batch_s[b]))
                out.append(batch(f"b{b}", when, self.scores[b * SIZE : (b + 1) * SIZE].tolist()))
                continue
            when = T0 + timedelta(milliseconds=int(self.known_ms[i]))
            envelope = Envelope.model_construct(**{**ENVELOPE.__dict__, "event_time": when})
            out.append(Outcome.model_construct(
                envelope=envelope, model_name="m", model_version="1", prediction_id=None,
                batch_id=f"b{i // SIZE}", row=i % SIZE, label=labels[int(self.truth[i])],
                value=None,
            ))  # fmt: skip
        return out


def run_detector(stream: Stream) -> tuple[float, float, PerformanceDetector, int]:
    """CPU and wall seconds of the detector over the whole stream, the detector, its alerts."""
    baseline = Baseline.from_training_run(training_run({"accuracy": 0.8, "auc": 0.85}))
    detector = PerformanceDetector(baseline, PerformanceConfig(window_seconds=WINDOW_S))
    cpu = wall = 0.0
    alerts = 0
    for start in range(0, len(stream.order), CHUNK):
        events = stream.events(stream.order[start : start + CHUNK])
        c0, w0 = time.process_time(), time.perf_counter()
        for event in events:
            alerts += len(detector.observe(event))
        cpu, wall = cpu + time.process_time() - c0, wall + time.perf_counter() - w0
    c0, w0 = time.process_time(), time.perf_counter()
    alerts += len(detector.release(everything=True))
    return cpu + time.process_time() - c0, wall + time.perf_counter() - w0, detector, alerts


def run_raw(stream: Stream) -> tuple[float, dict[int, tuple[float, float]]]:
    """CPU seconds of the array join and metrics; per window (accuracy, AUC)."""
    batches = -1 - stream.order[stream.order < 0]  # in arrival order
    arriving = stream.order[stream.order >= 0]
    outcome_batch, outcome_row = arriving // SIZE, arriving % SIZE  # what each outcome names
    c0 = time.process_time()
    predicted = (batches[:, None] * SIZE + np.arange(SIZE)).ravel()  # keys as batches arrive
    by_key = np.argsort(predicted, kind="stable")
    sorted_keys = predicted[by_key]
    keys, first = np.unique(outcome_batch * SIZE + outcome_row, return_index=True)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    hit = sorted_keys[at] == keys
    joined = predicted[by_key[at[hit]]]  # the prediction of each first outcome that has one
    delay = stream.known_ms[arriving[first[hit]]] - stream.time_ms[joined]
    within = delay <= 7 * 24 * 3600 * 1000
    joined, delay = joined[within], delay[within]
    window = stream.time_ms[joined] // (WINDOW_S * 1000)
    said, truth = stream.scores[joined] >= 0.5, stream.truth[joined]
    windows = int(window.max()) + 1
    correct = np.bincount(window, weights=said == truth, minlength=windows)
    count = np.bincount(window, minlength=windows)
    np.bincount(window, weights=said & truth, minlength=windows)  # precision and recall
    np.bincount(window, weights=said, minlength=windows)
    np.bincount(window, weights=truth, minlength=windows)
    found = {}
    for w in np.flatnonzero(count).tolist():
        mine = window == w
        scores, positive = stream.scores[joined[mine]], truth[mine]
        np.median(delay[mine])
        found[w] = (correct[w] / count[w], auc(scores[positive], scores[~positive]))
    return time.process_time() - c0, found


def main() -> None:
    stream = Stream(np.random.default_rng(1))
    outcomes = BATCHES * SIZE
    cpu, wall, detector, alerts = run_detector(stream)
    raw_cpu, raw = run_raw(stream)
    reports = detector.take_reports()
    hour = {r["window_start"]: (r["accuracy"], r["auc"]) for r in reports}
    difference = max(
        max(abs(hour[_start(w)][0] - accuracy), abs(hour[_start(w)][1] - area))
        for w, (accuracy, area) in raw.items()
    )
    counts = detector.counts()
    figures = {
        "detector_outcomes_per_cpu_s": outcomes / cpu,
        "detector_outcomes_per_wall_s": outcomes / wall,
        "raw_outcomes_per_cpu_s": outcomes / raw_cpu,
        "cpu_us_per_outcome": cpu / outcomes * 1e6,
        "joined": counts["joined"],
        "waited_for_prediction_share": _waited(stream),
        "windows": len(reports),
        "alerts": alerts,
        "max_metric_difference": difference,
    }
    figures["ratio"] = figures["detector_outcomes_per_cpu_s"] / figures["raw_outcomes_per_cpu_s"]
    report("performance", figures, predictions=outcomes, outcomes=outcomes)


def _start(window: int) -> str:
    """The ISO start of window number ``window`` of the stream (T0 starts an hour)."""
    return (T0 + timedelta(seconds=window * WINDOW_S)).isoformat()


def _waited(stream: Stream) -> float:
    """The share of outcomes that arrived before their batch (and waited for it)."""
    position = np.empty(len(stream.order), dtype=np.int64)
    position[np.argsort(stream.order)] = np.arange(len(stream.order))
    # order values sorted: batches -BATCHES..-1 first, then outcomes 0..n-1
    batch_at = position[:BATCHES][::-1]  # batch b sits at sorted index BATCHES - 1 - b
    outcome_at = position[BATCHES:]
    return float(np.mean(outcome_at < np.repeat(batch_at, SIZE)))


if __name__ == "__main__":
    main()
