"""The model-quality detector of one model version (pure): predictions and outcomes in, judged
windows and ``PerformanceAlert`` bodies out.

Predictions (``Prediction``, ``PredictionBatch`` rows: score and/or label) count into tumbling
windows of ``window_seconds`` by their event time and are kept by the ``Joiner``; each
``Outcome`` joins its prediction there, and the pair adds to the prediction's window. The
watermark is the latest event time seen (predictions and outcomes). A window is judged once the
watermark is ``horizon_seconds + allowed_lateness_seconds`` past its end, when no outcome within
the horizon can still join one of its predictions (or at ``release(everything=True)``, at the end
of the input): its metrics against the training run (``degradation``), then the episodes. Its
predictions are then forgotten; a prediction that arrives for a judged window is counted
``late_predictions`` and left out, as drift's late predictions are.

``reports`` collects each judged window's figures (metrics, coverage, label delay, counts) until
the owner takes them (``take_reports``). JSON-able (``to_json``) for a changelog table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from auditline.drift.episodes import utc
from auditline.events import Outcome, Prediction, PredictionBatch
from auditline.performance import degradation
from auditline.performance.config import PerformanceConfig
from auditline.performance.degradation import Baseline, PerformanceEpisodes
from auditline.performance.joiner import Forgotten, Joiner
from auditline.performance.metrics import WindowMetrics

NEVER = -(2**62)


class PerformanceDetector:
    def __init__(
        self,
        baseline: Baseline,
        config: PerformanceConfig | None = None,
        joiner: Joiner | None = None,
        episodes: PerformanceEpisodes | None = None,
    ) -> None:
        self.baseline = baseline
        self.config = config = config or PerformanceConfig()
        self.window_ms = config.window_seconds * 1000
        self.wait_ms = (config.horizon_seconds + config.allowed_lateness_seconds) * 1000
        self.joiner = joiner or Joiner(
            config.horizon_ms, self.window_ms, config.max_pending_outcomes
        )
        self.windows: dict[int, WindowMetrics] = {}
        self.joiner.targets = self.windows  # pairs go straight to their window
        self.episodes = episodes or PerformanceEpisodes(config)
        self.watermark_ms = NEVER
        self.judged_through_ms = NEVER  # end of the latest window judged
        self.late_predictions = 0
        self.reports: list[dict[str, Any]] = []
        self._next_check_ms = NEVER  # the watermark at which the next window end is due
        self.keep_forgotten = False  # collect what each release forgot (a keyed store's owner)
        self.forgotten: list[Forgotten] = []

    def observe(self, event: Prediction | PredictionBatch | Outcome) -> list[dict[str, Any]]:
        """Add one event of this model version; the alerts of the windows it let be judged."""
        time_ms = int(event.envelope.event_time.timestamp() * 1000)
        if isinstance(event, Outcome):  # the hot path: the joiner's own methods, inline
            if event.prediction_id is not None:
                self.joiner.add_outcome(event.prediction_id, time_ms, event.label, event.value)
            else:
                self.joiner.add_row_outcome(
                    event.batch_id or "", event.row or 0, time_ms, event.label, event.value
                )
        elif isinstance(event, PredictionBatch):
            self.add_batch(event.batch_id, time_ms, event.count, event.scores, event.labels)
        else:
            self.add_single(event.prediction_id, time_ms, event.score, event.label)
        if time_ms > self.watermark_ms:  # ``advance``, inline
            self.watermark_ms = time_ms
            if time_ms >= self._next_check_ms:
                return self.release()
        return []

    def add_single(
        self, prediction_id: str, time_ms: int, score: float | None, label: str | None
    ) -> bool:
        """Keep one prediction; False when it is left out (late for its window, a duplicate)."""
        window = self._window(time_ms, 1)
        if window is None or not self.joiner.add_single(prediction_id, time_ms, score, label):
            return False
        window.add_predictions(1, None if score is None else (score,))
        return True

    def add_batch(
        self,
        batch_id: str,
        time_ms: int,
        count: int,
        scores: Sequence[float] | None,
        labels: Sequence[str] | None,
    ) -> bool:
        """Keep a batch's predictions; False when it is left out (late, a duplicate)."""
        window = self._window(time_ms, count)
        if window is None or not self.joiner.add_batch(batch_id, time_ms, count, scores, labels):
            return False
        window.add_predictions(count, scores)
        return True

    def add_outcome(
        self,
        time_ms: int,
        label: str | None,
        value: float | None,
        *,
        prediction_id: str | None = None,
        batch_id: str | None = None,
        row: int | None = None,
    ) -> bool:
        """An outcome of a single prediction (its id) or of a batch row; True when it is kept
        (joined, or waiting for its prediction)."""
        if prediction_id is not None:
            return self.joiner.add_outcome(prediction_id, time_ms, label, value)
        return self.joiner.add_row_outcome(batch_id or "", row or 0, time_ms, label, value)

    def advance(self, time_ms: int) -> list[dict[str, Any]]:
        """The watermark moves to ``time_ms`` if later: the alerts of the windows it lets be
        judged."""
        if time_ms > self.watermark_ms:
            self.watermark_ms = time_ms
            if time_ms >= self._next_check_ms:
                return self.release()
        return []

    def _window(self, time_ms: int, count: int) -> WindowMetrics | None:
        start = time_ms - time_ms % self.window_ms
        if start + self.window_ms <= self.judged_through_ms:
            self.late_predictions += count
            return None
        window = self.windows.get(start)
        if window is None:
            window = self.windows[start] = WindowMetrics(
                positive_label=self.config.positive_label,
                decision_threshold=self.config.decision_threshold,
            )
        return window

    def release(self, *, everything: bool = False) -> list[dict[str, Any]]:
        """Judge the windows whose horizon has passed (``everything``: every window held):
        their reports, and the alert bodies of the episodes they open or close."""
        through = None if everything else self.watermark_ms - self.wait_ms
        ready = sorted(
            start for start in self.windows if through is None or start + self.window_ms <= through
        )
        alerts = []
        for start in ready:
            alerts += self._judge(start, self.windows.pop(start))
        if ready:
            self.judged_through_ms = max(self.judged_through_ms, ready[-1] + self.window_ms)
        forgotten = self.joiner.expire(through)
        if self.keep_forgotten:
            self.forgotten.append(forgotten)
        if through is not None:  # windows end on multiples of the size: check at the next one
            self._next_check_ms = (through // self.window_ms + 1) * self.window_ms + self.wait_ms
        return alerts

    def _judge(self, start: int, window: WindowMetrics) -> list[dict[str, Any]]:
        end = start + self.window_ms
        summary = window.summary()
        metrics = window.metrics()
        self.reports.append(self._report(start, end, summary))
        results = degradation.judge(summary, metrics, self.baseline, self.config)
        return [
            degradation.alert_body(self.baseline, transition, self.config)
            for transition in self.episodes.step(results, start, end)
        ]

    def _report(self, start: int, end: int, summary: dict[str, float]) -> dict[str, Any]:
        return {
            "model_name": self.baseline.model_name, "model_version": self.baseline.model_version,
            "window_start": utc(start).isoformat(), "window_end": utc(end).isoformat(),
            **summary,
        }  # fmt: skip

    def take_reports(self) -> list[dict[str, Any]]:
        """The judged windows' figures since the last call (JSON-able: ISO times)."""
        reports, self.reports = self.reports, []
        return reports

    def counts(self) -> dict[str, int]:
        """The joiner's counters, with the predictions that arrived after their window."""
        return {**self.joiner.counts, "late_predictions": self.late_predictions}

    def open_episodes(self) -> list[str]:
        return self.episodes.open_episodes()

    def meta_json(self) -> dict[str, Any]:
        """The state besides the kept predictions and outcomes and their windows' figures (a
        keyed store keeps those one per key and rebuilds the rest by adding them again)."""
        return {
            "watermark": self.watermark_ms, "judged": self.judged_through_ms,
            "late": self.late_predictions, "episodes": self.episodes.to_json(),
            "counts": dict(self.joiner.counts),
        }  # fmt: skip

    def restore_meta(self, data: Mapping[str, Any], *, counts: bool = True) -> None:
        """Put back ``meta_json``'s state: before the kept inputs are added again (so inputs of
        windows judged already are refused as late) with ``counts=False``, and after them."""
        self.judged_through_ms = max(self.judged_through_ms, data["judged"])
        self.episodes = PerformanceEpisodes.from_json(self.config, data["episodes"])
        if counts:
            self.watermark_ms = max(self.watermark_ms, data["watermark"])
            self.late_predictions = data["late"]
            self.joiner.counts.update({k: int(v) for k, v in data["counts"].items()})

    def to_json(self) -> dict[str, Any]:
        return {
            "joiner": self.joiner.to_json(),
            "windows": {str(k): v.to_json() for k, v in self.windows.items()},
            "watermark": self.watermark_ms, "judged": self.judged_through_ms,
            "late": self.late_predictions, "episodes": self.episodes.to_json(),
        }  # fmt: skip

    @classmethod
    def from_json(
        cls, baseline: Baseline, config: PerformanceConfig, data: Mapping[str, Any]
    ) -> PerformanceDetector:
        detector = cls(
            baseline, config, Joiner.from_json(data["joiner"]),
            PerformanceEpisodes.from_json(config, data["episodes"]),
        )  # fmt: skip
        rules = (config.positive_label, config.decision_threshold)
        detector.windows.update(
            {int(k): WindowMetrics.from_json(v, *rules) for k, v in data["windows"].items()}
        )
        detector.watermark_ms, detector.judged_through_ms = data["watermark"], data["judged"]
        detector.late_predictions = data["late"]
        return detector
