"""``auditline drift``: the drift detector over a file of predictions, in file order.

The reference is a completed TrainingRun in its JSON form (``kind`` may be left out); the
predictions are JSON lines of ``Prediction`` or ``PredictionBatch`` (``docs/drift.md``), with the
envelope optional as in ``auditline check``. Predictions of other models or versions are skipped.
At the end of the input every remaining window is judged. The alerts are drift's and the
data-quality checks' bodies (``explain.alert_model`` tells them apart; ``explain.described``
adds the ``kind`` and what decided each, as ``auditline drift`` prints them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from auditline.check import BadInput, parse_event
from auditline.drift.detector import DriftConfig, DriftDetector
from auditline.drift.reference import PREDICTION, Reference
from auditline.errors import ConfigError
from auditline.events import Event, Prediction, PredictionBatch, TrainingRun
from auditline.yamlfile import PerModel, load_per_model


class DriftSettings(PerModel[DriftConfig]):
    """Drift thresholds: ``defaults`` for every model, ``models`` overrides by model name."""

    defaults: DriftConfig = DriftConfig()


def load_drift_settings(path: str | Path | None) -> DriftSettings:
    """Settings from a YAML file (``defaults:`` / ``models:``); the defaults without one."""
    return load_per_model(None if path is None else Path(path), DriftSettings, "drift settings")


def load_training_run(text: str) -> TrainingRun:
    """A TrainingRun given as JSON (one object; ``kind`` optional); ``BadInput`` if not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(exc.lineno, f"the training run is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise BadInput(1, "the training run must be one JSON object: a TrainingRun")
    data.setdefault("kind", "TrainingRun")
    run = parse_event(json.dumps(data), 1, {"TrainingRun": TrainingRun})
    assert isinstance(run, TrainingRun)
    return run


def load_reference(text: str) -> Reference:
    """The reference of a TrainingRun given as JSON (``load_training_run``)."""
    return Reference.from_training_run(load_training_run(text))


@dataclass
class Report:
    """What an offline run saw besides its alerts: for people, on standard error."""

    judged: int = 0  # predictions of the reference's model version
    skipped: dict[str, int] = field(default_factory=dict)  # events of other versions, by version
    seen: set[str] = field(default_factory=set)  # feature names the predictions carried

    def lines(self, detector: DriftDetector) -> list[str]:
        reference = detector.reference
        out = [f"skipped {count} events of {model}" for model, count in self.skipped.items()]
        late = detector.windows.late
        if late:
            out.append(
                f"{late} of {self.judged} predictions arrived after their window was judged and "
                "were not counted: sort the input by event time, or raise "
                "allowed_lateness_seconds"
            )
        unmatched = sorted(
            f.name for f in reference.features if f.name != PREDICTION and f.name not in self.seen
        )
        if unmatched and self.judged:
            out.append(
                f"{len(unmatched)} reference features never appear in the predictions, so they "
                f"were not judged (renamed?): {', '.join(unmatched)}"
            )
        return out


def drift(
    lines: Iterable[str], detector: DriftDetector, report: Report | None = None
) -> Iterator[dict[str, Any]]:
    """Alert bodies (opened/closed; drift and data quality) over the prediction lines;
    ``BadInput`` on the first bad one.
    ``report`` gathers what was skipped, late or never seen."""
    report = report if report is not None else Report()
    models: dict[str, type[Event]] = {"Prediction": Prediction, "PredictionBatch": PredictionBatch}
    reference = detector.reference
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        event = parse_event(text, number, models)
        assert isinstance(event, Prediction | PredictionBatch)
        if (event.model_name, event.model_version) != (
            reference.model_name,
            reference.model_version,
        ):
            key = f"{event.model_name}/{event.model_version}"
            report.skipped[key] = report.skipped.get(key, 0) + 1
            continue
        report.judged += event.count if isinstance(event, PredictionBatch) else 1
        report.seen.update(_features(event))
        yield from detector.observe(event)
    yield from detector.release(everything=True)


def _features(event: Prediction | PredictionBatch) -> Iterator[str]:
    if isinstance(event, PredictionBatch):
        yield from (c.name for c in event.numeric_features)
        yield from (c.name for c in event.categorical_features)
    else:
        yield from event.numeric_features
        yield from event.categorical_features


def with_window(config: DriftConfig, seconds: int | None) -> DriftConfig:
    """``config`` with a command line's window, validated like the YAML's."""
    if seconds is None:
        return config
    try:
        return DriftConfig.model_validate({**config.model_dump(), "window_seconds": seconds})
    except ValidationError as exc:
        raise ConfigError(
            f"--window {seconds}: {exc.errors()[0]['msg']} (a window is a number of seconds)"
        ) from None
