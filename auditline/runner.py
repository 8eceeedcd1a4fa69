"""The embedded runner: the same detectors as the stream processors, driven in-process.

For the demo, ``auditline check`` style batch runs and tests: events from the in-process
transport are judged in event-time order against the policy (lineage state in a dict) and every
producer stream's chain is followed, with no broker and no faust. With ``drift`` settings (needs
``auditline[drift]``), predictions are also compared with their training run's profiles by the
drift detector (``DriftAlert`` bodies, and ``DataQualityAlert`` bodies for its data-quality
checks); windows still open at the end of a run stay open for the next one, and ``finish_drift``
judges them. With ``performance`` settings (also numpy), predictions and their ``Outcome`` events
go to the model-quality detector of their model version (``auditline.performance``), created
from the version's completed training run: ``PerformanceAlert`` bodies, and each judged window's
figures (metrics, coverage, label delay) in ``performance_windows``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditline.catalogue import Catalogue
from auditline.codec import Codec, SingleObjectCodec
from auditline.drift.explain import alert_model  # no numpy: the drift extra stays optional
from auditline.errors import DecodeError
from auditline.events import (
    DataQualityAlert,
    Event,
    Outcome,
    Prediction,
    PredictionBatch,
    RunStatus,
    TrainingRun,
)
from auditline.integrity.signing import Keys
from auditline.integrity.verify import ChainVerifier, Finding, StreamHead
from auditline.policy.decisions import Decision
from auditline.policy.engine import PolicyEngine
from auditline.producer.memory import InProcessBroker

if TYPE_CHECKING:
    from auditline.drift.detector import DriftDetector
    from auditline.drift.offline import DriftSettings
    from auditline.performance.config import PerformanceSettings
    from auditline.performance.detector import PerformanceDetector


@dataclass
class RunResult:
    decisions: list[Decision] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    dead_letters: list[tuple[str, str]] = field(default_factory=list)  # (topic, reason)
    drift_alerts: list[dict[str, Any]] = field(default_factory=list)  # DriftAlert fields
    quality_alerts: list[dict[str, Any]] = field(default_factory=list)  # DataQualityAlert fields
    performance_alerts: list[dict[str, Any]] = field(default_factory=list)  # PerformanceAlert
    performance_windows: list[dict[str, Any]] = field(default_factory=list)  # judged windows

    def add_drift(self, bodies: Iterable[dict[str, Any]]) -> None:
        """Alert bodies of the drift detector, each to its kind's list."""
        for body in bodies:
            kind = alert_model(body)
            (self.quality_alerts if kind is DataQualityAlert else self.drift_alerts).append(body)


class EmbeddedRunner:
    def __init__(
        self,
        engine: PolicyEngine,
        keys: Keys | None = None,
        codec: Codec | None = None,
        drift: DriftSettings | None = None,
        performance: PerformanceSettings | None = None,
    ) -> None:
        self.engine = engine
        self.drift = drift
        self.detectors: dict[tuple[str, str], DriftDetector] = {}
        self.performance = performance
        self.performance_detectors: dict[tuple[str, str], PerformanceDetector] = {}
        self.outcomes_seen: set[tuple[str, str]] = set()  # versions with an outcome (join_from)
        self.codec = codec or SingleObjectCodec(Catalogue())
        self.state: dict[str, Any] = {}
        self.heads: dict[str, StreamHead] = {}
        self.verifier = ChainVerifier(self.heads, keys)

    def run_events(self, events: Iterable[Event], result: RunResult | None = None) -> RunResult:
        result = result or RunResult()
        for event in sorted(
            events, key=lambda e: (e.envelope.event_time, e.envelope.stream, e.envelope.sequence)
        ):
            result.findings += self.verifier.observe(event)
            result.decisions += self.engine.evaluate(event, self.state)
            if self.drift is not None:
                result.add_drift(self._drift(event, self.drift))
            if self.performance is not None:
                result.performance_alerts += self._performance(event, self.performance)
        self._take_reports(result)
        return result

    def _performance(self, event: Event, settings: PerformanceSettings) -> list[dict[str, Any]]:
        from auditline.performance.degradation import Baseline, BaselineError
        from auditline.performance.detector import PerformanceDetector

        if isinstance(event, TrainingRun) and event.status == RunStatus.COMPLETED:
            try:
                baseline = Baseline.from_training_run(event)
            except BaselineError:
                return []
            key = (baseline.model_name, baseline.model_version)
            config = settings.for_model(baseline.model_name)
            if config.join_from != "never":
                self.performance_detectors[key] = PerformanceDetector(baseline, config)
        if isinstance(event, Prediction | PredictionBatch | Outcome):
            key = (event.model_name, event.model_version)
            detector = self.performance_detectors.get(key)
            if detector is None:
                return []
            if isinstance(event, Outcome):
                self.outcomes_seen.add(key)
            elif detector.config.join_from == "first_outcome" and key not in self.outcomes_seen:
                return []  # predictions are kept once the version's first outcome is seen
            return detector.observe(event)
        return []

    def _take_reports(self, result: RunResult) -> None:
        for detector in self.performance_detectors.values():
            result.performance_windows += detector.take_reports()

    def _drift(self, event: Event, settings: DriftSettings) -> list[dict[str, Any]]:
        from auditline.drift.detector import DriftDetector
        from auditline.drift.reference import Reference, ReferenceError

        if isinstance(event, TrainingRun) and event.status == RunStatus.COMPLETED:
            try:
                reference = Reference.from_training_run(event)
            except ReferenceError:
                return []
            config = settings.for_model(reference.model_name)
            key = (reference.model_name, reference.model_version)
            self.detectors[key] = DriftDetector(reference, config)
        if isinstance(event, Prediction | PredictionBatch):
            detector = self.detectors.get((event.model_name, event.model_version))
            if detector is not None:
                return detector.observe(event)
        return []

    def finish_drift(self, result: RunResult | None = None) -> RunResult:
        """Judge every window still open (end of input): their drift and quality alerts, and the
        model-quality detectors' (their windows and alerts)."""
        result = result or RunResult()
        for detector in self.detectors.values():
            result.add_drift(detector.release(everything=True))
        for performance in self.performance_detectors.values():
            result.performance_alerts += performance.release(everything=True)
        self._take_reports(result)
        return result

    def run_broker(self, broker: InProcessBroker) -> RunResult:
        result, events = RunResult(), []
        for topic, messages in broker.topics.items():
            for message in messages:
                try:
                    events.append(self.codec.decode(message.value))
                except DecodeError as exc:
                    result.dead_letters.append((topic, str(exc)))
        return self.run_events(events, result)
