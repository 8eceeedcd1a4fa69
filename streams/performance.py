"""Model quality in the worker: predictions joined to their outcomes by model version, windows
judged against the training run (``auditline.performance``).

1. Where predictions and outcomes are consumed (partitioned by producer stream), each
   ``Prediction`` and ``PredictionBatch`` with a score or a label, and each ``Outcome``, of a
   model version with a completed training run (its ``Baseline``, kept in a GlobalTable by the
   audit agent), that the ``Gate`` lets through (predictions by default once the version's
   first outcome was seen) becomes an input record, with its source partition and offset; a
   source batch's records of one version go as one message (a JSON list, in source order) to
   the internal ``performance-inputs`` topic, on the version's partition (``partition_of``).
2. The performance agent merges a version's inputs into its ``PerformanceDetector`` (the join,
   the windows, the episodes) and emits a PerformanceAlert per episode opened or closed.

**State.** The ``performance-state`` table is partitioned like that topic (``VersionTable``: every
key of a model version on the version's partition). It holds what the join keeps, a key each,
written once when it is kept: a single prediction, a batch, an outcome (joined, or waiting for
its prediction); and per version one meta value: the watermark, the windows judged, the episodes,
the counters and the highest source offset merged per source partition. A worker that takes a
version over rebuilds its detector by adding the kept inputs again (whether two events join
depends only on their event times, so they pair as before) under the meta. A batch writes its
inputs first, then each changed version's meta (the commit point), then deletes the inputs of
the windows it judged, all on one partition, so in that order. After a crash:

- an input at or below the meta's offset for its source is skipped (its writes preceded the meta);
- a later one is read again: if its key holds its own source offset it was kept before the crash
  and is in the rebuilt detector, so it is skipped; otherwise it is merged as new;
- kept predictions of windows the meta says judged (their deletions were lost) are deleted on
  rebuild; kept outcomes of them wait again and go at the next release.

So each prediction and outcome pairs once and each window is judged once; a window judged again
because its meta was lost gives the same alerts with the same ids. The join's counters (those in
the meta: predictions, outcomes, joined, duplicates, unmatched...) are not exact across a crash:
the inputs merged after the last meta are counted again or not at all. A batch's alerts are
spooled before its changelog records are queued (no await in between), so no state says a
window was judged whose alerts were not spooled.

A version whose inputs stop keeps its last windows (and their kept inputs) until an input moves
its watermark again: a retired model version's state stays in the table, its last windows
unjudged.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

from faust import Table

from auditline.derived import Derived
from auditline.events import Event, Outcome, Prediction, PredictionBatch, RunStatus, TrainingRun
from auditline.performance.config import PerformanceSettings
from auditline.performance.degradation import Baseline
from auditline.performance.detector import PerformanceDetector

from .drift import version_key

PREDICTIONS = ("p", "b")  # kinds of input: a single prediction, a batch (outcomes: "o", "r")
log = logging.getLogger(__name__)


def partition_of(version: str, partitions: int) -> int:
    """The partition of a model version's inputs and state (stable across processes)."""
    return zlib.crc32(version.encode()) % partitions


def state_key(version: str, *name: str | int) -> str:
    """A key of the state table: ``[version, kind, id(, row)]`` as JSON (``[version, "m"]``:
    the meta value)."""
    return json.dumps([version, *name], separators=(",", ":"))


def version_of(key: str) -> str:
    return str(json.loads(key)[0])


def input_key(version: str, record: dict[str, Any]) -> str:
    kind = record["k"]
    return state_key(version, kind, record["id"], *([record["row"]] if kind == "r" else []))


class VersionTable(Table):  # type: ignore[type-arg]  # faust's classes are not typed
    """A faust Table whose keys (``state_key``) go to their model version's partition, so one
    worker holds all of a version's state (faust's documented hook: ``partition_for_key``)."""

    def partition_for_key(self, key: Any) -> int:
        return partition_of(version_of(key), self.partitions or 1)  # (always given)


def baseline_of(event: Event) -> tuple[str, dict[str, Any]] | None:
    """(key, baseline JSON) for a completed TrainingRun of a model version."""
    if not isinstance(event, TrainingRun) or event.status != RunStatus.COMPLETED:
        return None
    if not event.model_version:
        return None
    return version_key(event.model_name, event.model_version), Baseline.from_training_run(
        event
    ).to_json()


class Baselines:
    """Training-run metrics by model version over the worker's GlobalTable of their JSON, and
    those that came with a version's inputs (``learn``) for a version this worker has not read
    yet (the GlobalTable can lag behind the worker that sent them)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._parsed = Derived(Baseline.from_json)
        self._learned: dict[str, Any] = {}

    def get(self, key: str) -> Baseline | None:
        known = self.table.get(key)
        if known is None:
            known = self._learned.get(key)
        return None if known is None else self._parsed.get(key, known)

    def learn(self, key: str, value: Any) -> None:
        if value is not None and key not in self._learned and self.table.get(key) is None:
            self._learned[key] = value


class Gate:
    """Which predictions and outcomes go to the join (``PerformanceConfig.join_from``): those
    of a model version with a baseline; its outcomes unless the model says ``never``, its
    predictions from its training run (``training_run``) or once an outcome of the version has
    been seen (``first_outcome``, the default: the versions with outcomes are marked in a
    GlobalTable, so a model nobody sends outcomes for costs a lookup per event)."""

    def __init__(self, baselines: Baselines, active: Any, settings: PerformanceSettings) -> None:
        self.baselines, self.active, self.settings = baselines, active, settings
        self._modes: dict[str, str] = {}  # by model name

    def version(self, event: Prediction | PredictionBatch | Outcome) -> str | None:
        """The event's model version if the event goes to the join."""
        mode = self._modes.get(event.model_name)
        if mode is None:
            mode = self._modes[event.model_name] = self.settings.for_model(
                event.model_name
            ).join_from
        if mode == "never":
            return None
        key = version_key(event.model_name, event.model_version)
        if self.baselines.get(key) is None:
            return None
        if isinstance(event, Outcome):
            if key not in self.active:
                self.active[key] = int(event.envelope.event_time.timestamp() * 1000)
            return key
        return key if mode == "training_run" or key in self.active else None


def input_of(event: Event, message: Any, gate: Gate) -> tuple[str, bytes] | None:
    """(model version, input record) for a prediction with a score or label, or an outcome,
    that the gate lets through."""
    if not isinstance(event, Prediction | PredictionBatch | Outcome):
        return None
    if isinstance(event, PredictionBatch) and not event.scores and not event.labels:
        return None
    if isinstance(event, Prediction) and event.score is None and event.label is None:
        return None
    key = gate.version(event)
    if key is None:
        return None
    record: dict[str, Any]
    if isinstance(event, Outcome):
        record = (
            {"k": "o", "id": event.prediction_id} if event.prediction_id is not None
            else {"k": "r", "id": event.batch_id, "row": event.row}
        )  # fmt: skip
        record |= {"l": event.label, "v": event.value}
    elif isinstance(event, PredictionBatch):
        record = {"k": "b", "id": event.batch_id, "n": event.count,
                  "s": list(event.scores) or None, "l": list(event.labels) or None}  # fmt: skip
    else:
        record = {"k": "p", "id": event.prediction_id, "s": event.score, "l": event.label}
    record |= {
        "t": int(event.envelope.event_time.timestamp() * 1000),
        "src": f"{message.topic}:{message.partition}", "o": message.offset,
    }  # fmt: skip
    return key, json.dumps(record, separators=(",", ":")).encode()


@dataclass
class VersionState:
    detector: PerformanceDetector
    high: dict[str, int] = field(default_factory=dict)  # source partition: offset merged
    rows: dict[str, set[int]] = field(default_factory=dict)  # batch id: rows with a kept outcome


class PerformanceStates:
    """The stage-2 state: a detector per model version, cached over the keyed table (a
    ``JsonTable`` over a ``VersionTable``) and written back by ``flush`` once per batch."""

    def __init__(self, table: Any, baselines: Baselines, settings: PerformanceSettings) -> None:
        self.table = table
        self.baselines = baselines
        self.settings = settings
        self._cache: dict[str, VersionState] = {}
        self._changed: set[str] = set()
        self._deletions: set[str] = set()  # keys to delete after the metas (insertion order
        # does not matter: each is a key no longer needed)
        self._generation: Any = None
        self._stored: dict[str, list[str]] | None = None  # the table's keys by version
        self._reports: list[dict[str, Any]] = []  # of the detectors dropped at a rebalance
        self._unknown: set[str] = set()  # versions whose inputs came before their baseline

    def merge(self, version: str, record: dict[str, Any], generation: Any) -> list[dict[str, Any]]:
        """Merge one input; the alert bodies of the windows it lets be judged."""
        if generation != self._generation:  # partitions may have moved: reload from the table
            self.flush()
            self._reports += self.take_reports()
            self._cache.clear()
            self._stored = None
            self._generation = generation
        state = self._load(version)
        if state is None:
            return []
        source, offset = record["src"], record["o"]
        if offset <= state.high.get(source, -1):
            return []  # a replay of an input merged before the last commit
        state.high[source] = offset
        self._changed.add(version)
        key = input_key(version, record)
        kept = self.table.get(key)
        before_crash = kept is not None and (kept["src"], kept["o"]) == (source, offset)
        # (an input kept before a crash was added again when the detector was rebuilt)
        if not before_crash and _add(state.detector, record):
            self.table[key] = record
            self._deletions.discard(key)  # (a deletion queued in this batch is older)
            if record["k"] == "r":
                state.rows.setdefault(record["id"], set()).add(record["row"])
        alerts = state.detector.advance(record["t"])
        self._forget(version, state)
        return alerts

    def take_reports(self) -> list[dict[str, Any]]:
        """The figures of the windows judged since the last call (``PerformanceDetector``)."""
        reports, self._reports = self._reports, []
        return reports + [
            r for state in self._cache.values() for r in state.detector.take_reports()
        ]

    def flush(self) -> None:
        """The changed versions' meta values (the commit point), then the deletions."""
        for version in self._changed:
            state = self._cache[version]
            self.table[state_key(version, "m")] = {
                **state.detector.meta_json(), "hw": state.high,
            }  # fmt: skip
        self._changed.clear()
        for key in self._deletions:
            self.table.pop(key)
        self._deletions.clear()

    def _forget(self, version: str, state: VersionState) -> None:
        """The kept inputs of the windows just judged go (at the next flush)."""
        for forgotten in state.detector.forgotten:
            deleted: list[str] = []
            for prediction_id in forgotten.singles:
                deleted += [state_key(version, "p", prediction_id),
                            state_key(version, "o", prediction_id)]  # fmt: skip
            for batch_id in forgotten.batches:
                deleted.append(state_key(version, "b", batch_id))
                kept = state.rows.pop(batch_id, set())
                deleted += [state_key(version, "r", batch_id, row) for row in kept]
            deleted += [state_key(version, "o", pid) for pid in forgotten.outcomes]
            for batch_id, row in forgotten.row_outcomes:
                deleted.append(state_key(version, "r", batch_id, row))
                waited = state.rows.get(batch_id)
                if waited is not None:
                    waited.discard(row)
                    if not waited:
                        del state.rows[batch_id]
            self._deletions.update(deleted)
        state.detector.forgotten.clear()

    def _load(self, version: str) -> VersionState | None:
        if version in self._cache:
            return self._cache[version]
        baseline = self.baselines.get(version)
        if baseline is None:  # (stage 1 saw it: this worker has not read it yet)
            if version not in self._unknown:
                self._unknown.add(version)
                log.warning("inputs of %s arrived before its training run: not joined", version)
            return None
        detector = PerformanceDetector(baseline, self.settings.for_model(baseline.model_name))
        detector.keep_forgotten = True
        meta = self.table.get(state_key(version, "m"))
        if meta is not None:  # windows judged and episodes first: their inputs are refused
            detector.restore_meta(meta, counts=False)
        state = VersionState(detector, dict(meta["hw"]) if meta is not None else {})
        meta_key = state_key(version, "m")
        kept = [(key, self.table.get(key)) for key in self._keys(version) if key != meta_key]
        # predictions before outcomes, so every kept outcome meets its prediction again
        for key, record in sorted(kept, key=lambda pair: pair[1]["k"] not in PREDICTIONS):
            if not _add(detector, record):
                self._deletions.add(key)  # of a window judged before a crash, or never joined
            elif record["k"] == "r":
                state.rows.setdefault(record["id"], set()).add(record["row"])
        if meta is not None:
            detector.restore_meta(meta)
        self._cache[version] = state
        return state

    def _keys(self, version: str) -> list[str]:
        """The table's keys of ``version`` (one scan of the table per rebalance)."""
        if self._stored is None:
            self._stored = {}
            for key in self.table:
                self._stored.setdefault(version_of(key), []).append(key)
        return self._stored.pop(version, [])


def _add(detector: PerformanceDetector, record: dict[str, Any]) -> bool:
    """Add one input to the detector; whether the join keeps it."""
    kind, t = record["k"], record["t"]
    if kind == "b":
        return detector.add_batch(record["id"], t, record["n"], record["s"], record["l"])
    if kind == "p":
        return detector.add_single(record["id"], t, record["s"], record["l"])
    if kind == "o":
        return detector.add_outcome(t, record["l"], record["v"], prediction_id=record["id"])
    return detector.add_outcome(
        t, record["l"], record["v"], batch_id=record["id"], row=record["row"]
    )
