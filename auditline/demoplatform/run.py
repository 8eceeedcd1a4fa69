"""The platform run: every team's producer, a judging stage, the tamperer, on the story's clock.

Each team is an ``AuditProducer`` (validation, hash chain, Ed25519 signature, spool) over a
transport (the in-process broker here, Kafka in ``demoplatform.kafka``) behind a ``Relay``; its
events carry the story's time (2 March 2026) so that the law of that day judges them and the
drift detector's hourly windows pass in seconds. After every step the stage shows what fired:
here the embedded detectors drain the broker (``EmbeddedStage``); with Kafka the worker judges
and the alert service prints. One step's event is rewritten in transit by its relay (a
compromised hop); the chain verifier is what notices.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from auditline.codec import make_codec
from auditline.demo import DemoKeys
from auditline.demoplatform import serving, show
from auditline.demoplatform.detect import Detectors, Fired
from auditline.demoplatform.relay import Relay
from auditline.demoplatform.story import (
    CHURN_SERVING,
    DAY,
    FRANKFURT,
    ML_TRAINING,
    TEAMS,
    WORKER,
    Step,
    Team,
    data_steps,
)
from auditline.events import Outcome
from auditline.integrity.keyring import read_keyring
from auditline.producer import AuditProducer, Receipt
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.producer.transport import Transport
from auditline.settings import AuditlineSettings


@dataclass
class StoryClock:
    now: datetime = DAY


class StoryProducer(AuditProducer):
    """An ``AuditProducer`` whose events default to the story's time instead of the wall clock
    (``AuditedModel`` and ``training_run`` emit without a time of their own)."""

    def __init__(self, settings: AuditlineSettings, relay: Relay, clock: StoryClock) -> None:
        super().__init__(settings, transport=relay, codec=relay.codec)
        self.relay = relay
        self.clock = clock

    def default_event_time(self) -> datetime:
        return self.clock.now


Connect = Callable[[AuditlineSettings], Transport]
"""The transport a team's producer sends through (its relay goes around it)."""


class Platform:
    """Every team's producer on the story's clock. ``base``: settings every producer shares (the
    spool, and the broker and topic prefix with Kafka)."""

    def __init__(self, keys: DemoKeys, base: Mapping[str, Any], connect: Connect,
                 teams: tuple[Team, ...] = TEAMS) -> None:  # fmt: skip
        self.clock = StoryClock()
        self.producers = {team: self._producer(team, keys, base, connect) for team in teams}
        self.tampered = ""

    def _producer(
        self, team: Team, keys: DemoKeys, base: Mapping[str, Any], connect: Connect
    ) -> StoryProducer:
        settings = AuditlineSettings(
            **base, producer={**keys.producer(team.service, team.instance), "country": team.country}
        )
        relay = Relay(connect(settings), make_codec(settings))
        return StoryProducer(settings, relay, self.clock)

    def step(self, step: Step) -> Receipt:
        self.clock.now = DAY + timedelta(minutes=step.minute)
        producer = self.producers[step.team]
        if step.tamper:
            producer.relay.arm(producer.catalogue.for_model(step.model).topic, step.tamper)
        receipt = producer.emit(step.model, **step.body)
        producer.flush(10)
        if step.tamper:
            self.tampered = receipt.stream
        return receipt

    def close(self) -> bool:
        """Close every team's producer (each emits its final signed checkpoint); the embedded
        detectors' own stays open for what the end of input raises."""
        return all([p.close(10) for team, p in self.producers.items() if team != WORKER])


class Stage(Protocol):
    """What judges the platform while it runs, and shows it."""

    extra_batches: tuple[serving.Batch, ...]
    """Served after the day's schedule (the worker's windows close on a later event)."""

    def judged(self, display: show.Display) -> None:
        """After each step: show what fired."""

    def before_serving(self) -> None:
        """The model is trained and deployed: the drift detector must know its reference."""

    def finish(self, display: show.Display) -> None:
        """Every team's producer is closed: the end of input."""


def play(platform: Platform, stage: Stage, out: IO[str]) -> bool:
    """The whole story through ``stage``, shown as it happens; True when every team's producer
    delivered everything it emitted."""
    import numpy as np

    from auditline.onnx import AuditedModel

    rng = np.random.default_rng(20260302)
    steps, ml = data_steps(), serving.ml_steps()
    batches = [*serving.schedule(), *stage.extra_batches]
    serving_producer = platform.producers[CHURN_SERVING]
    labels = np.random.default_rng(20260303)  # whether customers churned: draws of their own
    learned: list[tuple[datetime, list[dict[str, Any]]]] = []  # outcomes, when known
    with show.Display(out, len(steps) + len(ml) + 2 + len(batches)) as display:
        for step in [*steps, *(s for s in ml if s.minute < 50)]:  # before the churn model's run
            platform.step(step)
            _report(platform, stage, display, step.caption, step.team)
        model = AuditedModel(
            serving.MODEL_FILE, producer=serving_producer, model=serving.MODEL,
            version=serving.VERSION, location=FRANKFURT, feature_names=serving.FEATURES, batch=1,
        )  # fmt: skip
        platform.clock.now = DAY + timedelta(minutes=50)
        serving.train(platform.producers[ML_TRAINING], model, rng)
        platform.producers[ML_TRAINING].flush(10)
        _report(platform, stage, display, "churn:4 trained on customers in Frankfurt (ONNX)",
                ML_TRAINING)  # fmt: skip
        for step in (s for s in ml if s.minute >= 50):
            platform.step(step)
            _report(platform, stage, display, step.caption, step.team)
        stage.before_serving()
        for batch in batches:
            platform.clock.now = batch.at
            learned = _learn(serving_producer, learned, batch.at)
            scores = serving.serve(model, batch, rng)
            serving_producer.flush(10)
            learned.append((batch.at + serving.OUTCOME_DELAY,
                            serving.outcomes(batch, scores, labels)))  # fmt: skip
            label = "campaign customers" if batch.campaign else "regular customers"
            _report(platform, stage, display, f"serving churn:4 {batch.at:%H:%M} UTC ({label})")
        platform.clock.now = max(at for at, _ in learned)
        _learn(serving_producer, learned, None)
        serving_producer.flush(10)
        _report(platform, stage, display, "churn outcomes of the last hours known", CHURN_SERVING)
        delivered = platform.close()
        stage.finish(display)
    return delivered


def _learn(
    producer: AuditProducer, learned: list[tuple[datetime, list[dict[str, Any]]]],
    now: datetime | None,
) -> list[tuple[datetime, list[dict[str, Any]]]]:  # fmt: skip
    """Emit the outcomes known by ``now`` (None: all), each batch's at its time; the rest."""
    for at, bodies in learned:
        if now is None or at <= now:
            producer.emit_many(Outcome, bodies, event_time=at)
    return [(at, bodies) for at, bodies in learned if now is not None and at > now]


def _report(platform: Platform, stage: Stage, display: show.Display, caption: str,
            team: Team | None = None) -> None:  # fmt: skip
    display.step(caption)
    if team is not None:
        display.line(f"{show.when(platform.clock.now)}  {team.service:<17} {caption}", "dim")
    stage.judged(display)


@dataclass
class PlatformRun:
    """What the embedded run produced: the broker holding every event and alert, what fired,
    and the stream a relay tampered with."""

    broker: InProcessBroker
    fired: Fired
    tampered_stream: str
    delivered: bool
    events: int = 0
    regimes: list[str] = field(default_factory=list)


class EmbeddedStage:
    """The embedded detectors (``detect.Detectors``) drain the in-process broker after each
    step; what fires is printed at once."""

    extra_batches: tuple[serving.Batch, ...] = ()

    def __init__(self, detectors: Detectors, producer: AuditProducer) -> None:
        self.detectors = detectors
        self.producer = producer  # the detectors' own, publishing the alerts

    def judged(self, display: show.Display) -> None:
        self._show(display, self.detectors.drain())

    def before_serving(self) -> None:
        """Nothing to wait for: the detectors read the training run in the last drain."""

    def finish(self, display: show.Display) -> None:
        self._show(display, self.detectors.drain())
        self._show(display, self.detectors.finish())
        self.producer.flush(10)
        self._show(display, self.detectors.drain())

    def _show(self, display: show.Display, fired: Fired) -> None:
        def at(event_id: str) -> datetime | None:
            event = self.detectors.seen.events.get(event_id)
            return event.envelope.event_time if event else None

        for d in fired.decisions:
            display.line(show.violation_line(d, at(d.subject_event_id)), STYLES.get(d.decision, ""))
        for alert in show.strongest(fired.drift):
            display.line(show.drift_line(alert), "magenta")
        for alert in show.strongest_quality(fired.performance):
            display.line(show.quality_line(alert), "magenta")
        for finding in fired.findings:
            display.line(show.integrity_line(finding, at(finding.event_id)), "bold red")


STYLES = {"deny": "bold red", "alert": "yellow", "allow_with_obligations": "cyan"}


def run_platform(keys: DemoKeys, out: IO[str]) -> PlatformRun:
    """The whole story on the embedded default, through the detectors, printed as it happens."""
    print("auditline demo: a multi-region ML platform on 2 March 2026 (UTC), embedded default\n"
          "(producer SDK -> in-process transport -> policy engine, chain verifier, drift and "
          "model-quality detectors -> alert events)\n", file=out)  # fmt: skip
    broker = InProcessBroker()
    with tempfile.TemporaryDirectory(prefix="auditline-demo-") as spool:
        base = {"spool": {"path": Path(spool), "fsync": "never"}}
        platform = Platform(
            keys, base, lambda _: InProcessTransport(broker), teams=(*TEAMS, WORKER)
        )
        worker = platform.producers[WORKER]
        detectors = Detectors(broker, read_keyring(keys.keyring), worker)
        delivered = play(platform, EmbeddedStage(detectors, worker), out)
        delivered = worker.close(10) and delivered
        detectors.drain()
    run = PlatformRun(broker, detectors.seen, platform.tampered, delivered, detectors.events)
    _summary(run, out)
    return run


def _summary(run: PlatformRun, out: IO[str]) -> None:
    fired = run.fired
    judged = [d for d in fired.decisions if d.decision != "allow"]
    print(f"\nThe detectors read {run.events} events (alert events included) and raised "
          f"{len(judged)} policy decisions, {len(fired.drift)} drift, "
          f"{len(fired.performance)} model-quality and {len(fired.findings)} integrity alert "
          "event(s), each published as a signed alert event. By regime:", file=out)  # fmt: skip
    for line in show.tally(judged):
        print(line, file=out)
    print(show.drift_summary(fired.drift), file=out)
    print(show.quality_summary(fired.performance), file=out)
    streams = sorted({f.stream for f in fired.findings})
    print(f"  {'integrity':<22} " + (", ".join(streams) or "nothing found"), file=out)
