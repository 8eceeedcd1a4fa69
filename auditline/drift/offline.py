"""``auditline drift``: the drift detector over a file of predictions, in file order.

The reference is a completed TrainingRun in its JSON form (``kind`` may be left out); the
predictions are JSON lines of ``Prediction`` or ``PredictionBatch`` (``docs/drift.md``), with the
envelope optional as in ``auditline check``. Predictions of other models or versions are skipped.
At the end of the input every remaining window is judged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditline.check import BadInput, parse_event
from auditline.drift.detector import DriftConfig, DriftDetector
from auditline.drift.reference import Reference
from auditline.errors import ConfigError
from auditline.events import Event, Prediction, PredictionBatch, TrainingRun


class DriftSettings(BaseModel):
    """Drift thresholds: ``defaults`` for every model, ``models`` overrides by model name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    defaults: DriftConfig = DriftConfig()
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def for_model(self, name: str) -> DriftConfig:
        overrides = self.models.get(name)
        if not overrides:
            return self.defaults
        return DriftConfig.model_validate({**self.defaults.model_dump(), **overrides})


def load_drift_settings(path: str | Path | None) -> DriftSettings:
    """Settings from a YAML file (``defaults:`` / ``models:``); the defaults without one."""
    if path is None:
        return DriftSettings()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        settings = DriftSettings.model_validate(data)
        for name in settings.models:
            settings.for_model(name)
    except OSError as exc:
        raise ConfigError(f"cannot read drift settings {path}: {exc.strerror}") from exc
    except (yaml.YAMLError, ValidationError, ValueError) as exc:
        raise ConfigError(f"drift settings {path} are invalid: {exc}") from exc
    return settings


def load_reference(text: str) -> Reference:
    """The reference of a TrainingRun given as JSON (one object; ``kind`` optional)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(exc.lineno, f"the reference is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise BadInput(1, "the reference must be one JSON object: a TrainingRun")
    data.setdefault("kind", "TrainingRun")
    run = parse_event(json.dumps(data), 1, {"TrainingRun": TrainingRun})
    assert isinstance(run, TrainingRun)
    return Reference.from_training_run(run)


def drift(
    lines: Iterable[str], detector: DriftDetector, skipped: dict[str, int] | None = None
) -> Iterator[dict[str, Any]]:
    """Alert bodies (opened/closed) over the prediction lines; ``BadInput`` on the first bad one."""
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
            if skipped is not None:
                key = f"{event.model_name}/{event.model_version}"
                skipped[key] = skipped.get(key, 0) + 1
            continue
        yield from detector.observe(event)
    yield from detector.release(everything=True)
