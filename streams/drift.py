"""Drift in the worker: two stages over the core detector (``auditline.drift``).

1. Where predictions are consumed (partitioned by producer stream), each prediction event of a
   model version with a known reference becomes its partial window counts, with the record's
   source partition and offset; a source batch's partials of one version go as one message (a
   JSON list, in source order) to the internal ``drift-partials`` topic keyed by model version.
2. The drift agent consumes the partials (all of one model version on one partition), merges
   them into that version's windows and episodes (``DriftDetector``), and emits a DriftAlert per
   drift episode and a DataQualityAlert per data-quality episode opened or closed. The state,
   with the highest source offset merged per source partition, is one value per model version
   in a changelog-backed table, written once per batch. A partial at or below that offset is a
   replay and is skipped (each partial of a message on its own), so a restart of either stage
   neither loses nor double-counts a prediction; replayed alerts carry the same ids.

References (a completed TrainingRun's profiles) are kept in a GlobalTable by the audit agent;
predictions of a version whose reference is not known yet are not counted.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from auditline.derived import Derived
from auditline.drift.detector import DriftDetector
from auditline.drift.offline import DriftSettings
from auditline.drift.reference import Reference, ReferenceError
from auditline.drift.window import WindowCounts, count_event
from auditline.events import Event, Prediction, PredictionBatch, RunStatus, TrainingRun

log = logging.getLogger(__name__)


def version_key(model: str, version: str) -> str:
    return f"{model}/{version}"


def reference_of(event: Event) -> tuple[str, dict[str, Any]] | None:
    """(key, reference JSON) for a completed TrainingRun that carries profiles."""
    if not isinstance(event, TrainingRun) or event.status != RunStatus.COMPLETED:
        return None
    if not event.model_version:
        return None
    try:
        reference = Reference.from_training_run(event)
    except ReferenceError as exc:
        log.warning("training run %s is no drift reference: %s", event.run_id, exc)
        return None
    return version_key(event.model_name, event.model_version), reference.to_json()


class References:
    """Drift references by model version over a mapping of their JSON form (the worker's
    GlobalTable); a stored value is turned into a ``Reference`` once, not per prediction."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._parsed = Derived(Reference.from_json)

    def get(self, key: str) -> Reference | None:
        known = self.table.get(key)
        return None if known is None else self._parsed.get(key, known)


def partial_of(event: Event, message: Any, references: References) -> tuple[str, bytes] | None:
    """(key, partial record) for a prediction event whose model version has a reference."""
    if not isinstance(event, Prediction | PredictionBatch):
        return None
    key = version_key(event.model_name, event.model_version)
    reference = references.get(key)
    if reference is None:
        return None
    counts = count_event(reference, event)
    partial = {
        "src": f"{message.topic}:{message.partition}", "offset": message.offset,
        "t": int(event.envelope.event_time.timestamp() * 1000), "w": counts.to_json(),
    }  # fmt: skip
    return key, json.dumps(partial, separators=(",", ":")).encode()


def partials_in(value: bytes) -> list[dict[str, Any]]:
    """The partials of a ``drift-partials`` message: a JSON list (one partial alone: the form
    written before a source batch's partials went together)."""
    found = json.loads(value)
    return found if isinstance(found, list) else [found]


class DriftStates:
    """The stage-2 state: detectors per model version, cached over a JSON table and written
    back by ``flush`` (once per batch, only the versions that changed)."""

    def __init__(self, table: Any, references: References, settings: DriftSettings) -> None:
        self.table = table  # JsonTable: key -> {"detector": ..., "hw": {src: offset}}
        self.references = references
        self.settings = settings
        self._cache: dict[str, tuple[DriftDetector, dict[str, int]]] = {}
        self._changed: set[str] = set()
        self._generation: Any = None

    def merge(self, key: str, partial: dict[str, Any], generation: Any) -> list[dict[str, Any]]:
        """Merge one partial; the alert bodies of the windows it lets close."""
        if generation != self._generation:  # partitions may have moved: reload from the table
            self.flush()
            self._cache.clear()
            self._generation = generation
        state = self._load(key)
        if state is None:
            return []
        detector, high = state
        if partial["offset"] <= high.get(partial["src"], -1):
            return []  # a replay of a record already merged
        detector.add(partial["t"], WindowCounts.from_json(partial["w"]))
        high[partial["src"]] = partial["offset"]
        self._changed.add(key)
        return detector.release()

    def flush(self) -> None:
        """Put the changed versions' state (counts and merged offsets together) in the table."""
        for key in self._changed:
            detector, high = self._cache[key]
            self.table[key] = {"detector": detector.to_json(), "hw": high}
        self._changed.clear()

    def _load(self, key: str) -> tuple[DriftDetector, dict[str, int]] | None:
        if key in self._cache:
            return self._cache[key]
        reference = self.references.get(key)
        if reference is None:
            return None
        config = self.settings.for_model(reference.model_name)
        saved = self.table.get(key)
        state: tuple[DriftDetector, dict[str, int]] = (
            (DriftDetector(reference, config), {})
            if saved is None
            else (DriftDetector.from_json(reference, config, saved["detector"]), dict(saved["hw"]))
        )
        self._cache[key] = state
        return state
