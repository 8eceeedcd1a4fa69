"""``auditline performance``: the model-quality detector over a file of predictions and outcomes,
in file order (``docs/performance.md``, "Offline").

The baseline is a completed TrainingRun in its JSON form (``kind`` may be left out), as for
``auditline drift``; the input is JSON lines of ``Prediction``, ``PredictionBatch`` and
``Outcome``, the envelope optional as in ``auditline check``. Events of other models or versions
are skipped and counted. Every prediction of the run's version is kept for the join, whatever the
settings' ``join_from`` (the worker's question of *when* to start joining does not arise for a
file an auditor chose). At the end of the input every remaining window is judged. The lines out
are each judged window's figures (``kind`` ``window``) followed by the alert bodies of the
episodes it opened or closed (``kind`` ``performance``), in the order they happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditline.check import parse_event
from auditline.drift.offline import load_training_run
from auditline.events import Event, Outcome, Prediction, PredictionBatch
from auditline.performance.degradation import Baseline
from auditline.performance.detector import PerformanceDetector

INPUTS: dict[str, type[Event]] = {
    "Prediction": Prediction,
    "PredictionBatch": PredictionBatch,
    "Outcome": Outcome,
}


def load_baseline(text: str) -> Baseline:
    """The baseline of a TrainingRun given as JSON (one object; ``kind`` optional): ``BadInput``
    when it is not one, ``BaselineError`` when the run did not complete a model version."""
    return Baseline.from_training_run(load_training_run(text))


@dataclass
class Report:
    """What an offline run saw besides its windows and alerts: for people, on standard error."""

    predictions: int = 0  # predictions (batch rows count one each) of the run's model version
    skipped: dict[str, int] = field(default_factory=dict)  # events of other versions, by version

    def lines(self, detector: PerformanceDetector) -> list[str]:
        out = [f"skipped {count} events of {model}" for model, count in self.skipped.items()]
        if detector.config.join_from == "never":
            out.append(
                f"the settings say join_from: never for {detector.baseline.model_name} (the "
                "worker does not join it); joined here all the same"
            )
        version = f"{detector.baseline.model_name}/{detector.baseline.model_version}"
        return out + counter_lines(detector.counts(), self.predictions, version)


def counter_lines(counts: dict[str, int], predictions: int, version: str) -> list[str]:
    """The detector's counters in words: the join always, what was left out when anything was."""
    c = counts
    out = [
        f"joined {c['joined']} of {c['outcomes']} outcomes of {version} to their prediction "
        f"({predictions} predictions)"
    ]
    said = (
        ("duplicate_predictions", "repeated predictions were ignored (the first kept)"),
        ("duplicate_outcomes", "repeated outcomes were ignored (the first kept)"),
        ("beyond_horizon", "outcomes became known more than horizon_seconds after their "
         "prediction and were left out"),
        ("unmatched_outcomes", "outcomes never met their prediction (not in the input, or "
         "its window was judged before they came)"),
        ("dropped_outcomes", "outcomes were dropped: more than max_pending_outcomes waited "
         "for their prediction"),
        ("late_predictions", "predictions arrived after their window was judged and were not "
         "counted: sort the input by event time, or raise allowed_lateness_seconds"),
    )  # fmt: skip
    return out + [f"{c[name]} {words}" for name, words in said if c.get(name)]


def performance(
    lines: Iterable[str], detector: PerformanceDetector, report: Report | None = None
) -> Iterator[dict[str, Any]]:
    """Judged windows (``kind`` ``window``) and alert bodies (``kind`` ``performance``) over the
    event lines, in the order they happened; ``BadInput`` on the first bad line. ``report``
    gathers what was skipped."""
    report = report if report is not None else Report()
    version = (detector.baseline.model_name, detector.baseline.model_version)
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        event = parse_event(text, number, INPUTS)
        assert isinstance(event, Prediction | PredictionBatch | Outcome)
        if (event.model_name, event.model_version) != version:
            key = f"{event.model_name}/{event.model_version}"
            report.skipped[key] = report.skipped.get(key, 0) + 1
            continue
        if not isinstance(event, Outcome):
            report.predictions += event.count if isinstance(event, PredictionBatch) else 1
        yield from judged(detector, detector.observe(event))
    yield from judged(detector, detector.release(everything=True))


def judged(
    detector: PerformanceDetector, alerts: Sequence[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The windows judged since the last call, each followed by the alerts it raised."""
    for window in detector.take_reports():
        yield {"kind": "window", **window}
        start = window["window_start"]
        yield from (
            {"kind": "performance", **alert}
            for alert in alerts
            if alert["window_start"].isoformat() == start
        )
