"""The platform run: every team's producer, the detectors, the tamperer, on the story's clock.

Each team is an ``AuditProducer`` (validation, hash chain, Ed25519 signature, spool) over one
in-process broker; its events carry the story's time (2 March 2026) so that the law of that day
judges them and the drift detector's hourly windows pass in seconds. After every step the
detectors drain the broker and what fired is printed. One step's event is rewritten on the
broker before anyone reads it (a compromised relay); the chain verifier is what notices.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import DemoKeys
from auditline.demoplatform import serving, show
from auditline.demoplatform.detect import Detectors, Fired
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
from auditline.events import Event
from auditline.integrity.keyring import read_keyring
from auditline.producer import AuditProducer, Receipt
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings


@dataclass
class StoryClock:
    now: datetime = DAY


class StoryProducer(AuditProducer):
    """An ``AuditProducer`` whose events default to the story's time instead of the wall clock
    (``AuditedModel`` and ``training_run`` emit without a time of their own)."""

    def __init__(self, settings: AuditlineSettings, transport: InProcessTransport,
                 clock: StoryClock) -> None:  # fmt: skip
        super().__init__(settings, transport=transport)
        self.clock = clock

    def emit_many(
        self,
        model: type[Event],
        bodies: Iterable[Mapping[str, Any]],
        *,
        event_time: datetime | None = None,
        trace_id: str | None = None,
        tenant: str | None = None,
    ) -> list[Receipt]:
        return super().emit_many(
            model, bodies, event_time=event_time or self.clock.now, trace_id=trace_id,
            tenant=tenant,
        )  # fmt: skip


@dataclass
class PlatformRun:
    """What the run produced: the broker holding every event and alert, what fired, and the
    stream a relay tampered with."""

    broker: InProcessBroker
    fired: Fired
    tampered_stream: str
    delivered: bool
    events: int = 0
    regimes: list[str] = field(default_factory=list)


def tamper(broker: InProcessBroker, topic: str, sequence: int, stream: str,
           changes: Mapping[str, Any]) -> None:  # fmt: skip
    """Rewrite fields of one event on the broker, keeping its envelope (hash, signature)."""
    codec = SingleObjectCodec(Catalogue())
    with broker.lock:
        log = broker.topics[topic]
        index = next(i for i, m in enumerate(log) if m.stream == stream and m.sequence == sequence)
        event = codec.decode(log[index].value)
        forged = event.model_copy(update=dict(changes))
        log[index] = dataclasses.replace(log[index], value=codec.encode(forged))


class Platform:
    def __init__(self, keys: DemoKeys, spool: Path, out: IO[str]) -> None:
        self.clock = StoryClock()
        self.broker = InProcessBroker()
        self.out = out
        self.producers = {
            team: self._producer(team, keys, spool) for team in (*TEAMS, WORKER)
        }  # fmt: skip
        self.detectors = Detectors(self.broker, read_keyring(keys.keyring), self.producers[WORKER])
        self.tampered = ""

    def _producer(self, team: Team, keys: DemoKeys, spool: Path) -> StoryProducer:
        settings = AuditlineSettings(
            producer={**keys.producer(team.service, team.instance), "country": team.country},
            spool={"path": spool, "fsync": "never"},
        )
        return StoryProducer(settings, InProcessTransport(self.broker), self.clock)

    def step(self, step: Step) -> Receipt:
        self.clock.now = DAY + timedelta(minutes=step.minute)
        producer = self.producers[step.team]
        receipt = producer.emit(step.model, **step.body)
        producer.flush(10)
        if step.tamper:
            topic = producer.catalogue.for_model(step.model).topic
            tamper(self.broker, topic, receipt.sequence, receipt.stream, step.tamper)
            self.tampered = receipt.stream
        return receipt

    def close(self) -> bool:
        """Close every team's producer (each emits its final signed checkpoint); the detectors'
        own stays open for what the end of input raises."""
        return all([p.close(10) for team, p in self.producers.items() if team != WORKER])


def run_platform(keys: DemoKeys, out: IO[str]) -> PlatformRun:
    """The whole story, through the detectors, printed as it happens."""
    import numpy as np

    from auditline.onnx import AuditedModel

    rng = np.random.default_rng(20260302)
    steps = data_steps()
    ml = serving.ml_steps()
    batches = serving.schedule()
    print("auditline demo: a multi-region ML platform on 2 March 2026 (UTC), embedded default\n"
          "(producer SDK -> in-process transport -> policy engine, chain verifier and drift "
          "detector -> alert events)\n", file=out)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="auditline-demo-") as spool:
        platform = Platform(keys, Path(spool), out)
        serving_producer = platform.producers[CHURN_SERVING]
        with show.Display(out, len(steps) + len(ml) + 1 + len(batches)) as display:
            for step in steps:
                platform.step(step)
                _report(platform, display, step.caption, step.team)
            for step in (s for s in ml if s.minute < 50):  # before the churn model's training
                platform.step(step)
                _report(platform, display, step.caption, step.team)
            model = AuditedModel(
                serving.MODEL_FILE, producer=serving_producer, model=serving.MODEL,
                version=serving.VERSION, location=FRANKFURT,
                feature_names=serving.FEATURES, batch=1,
            )  # fmt: skip
            platform.clock.now = DAY + timedelta(minutes=50)
            serving.train(platform.producers[ML_TRAINING], model, rng)
            platform.producers[ML_TRAINING].flush(10)
            _report(
                platform, display, "churn:4 trained on customers in Frankfurt (ONNX)", ML_TRAINING
            )
            for step in (s for s in ml if s.minute >= 50):
                platform.step(step)
                _report(platform, display, step.caption, step.team)
            for batch in batches:
                platform.clock.now = batch.at
                serving.serve(model, batch, rng)
                serving_producer.flush(10)
                label = "campaign customers" if batch.campaign else "regular customers"
                _report(platform, display, f"serving churn:4 {batch.at:%H:%M} UTC ({label})")
            delivered = platform.close()
            _show(platform, display, platform.detectors.drain())
            _show(platform, display, platform.detectors.finish())
            platform.producers[WORKER].flush(10)
            _show(platform, display, platform.detectors.drain())
        delivered = platform.producers[WORKER].close(10) and delivered
        platform.detectors.drain()
    run = PlatformRun(platform.broker, platform.detectors.seen, platform.tampered, delivered,
                      platform.detectors.events)  # fmt: skip
    _summary(run, out)
    return run


def _report(platform: Platform, display: show.Display, caption: str, team: Team | None = None
            ) -> None:  # fmt: skip
    display.step(caption)
    if team is not None:
        display.line(f"{show.when(platform.clock.now)}  {team.service:<17} {caption}", "dim")
    _show(platform, display, platform.detectors.drain())


STYLES = {"deny": "bold red", "alert": "yellow", "allow_with_obligations": "cyan"}


def _show(platform: Platform, display: show.Display, fired: Fired) -> None:
    def at(event_id: str) -> datetime | None:
        event = platform.detectors.seen.events.get(event_id)
        return event.envelope.event_time if event else None

    for d in fired.decisions:
        display.line(show.violation_line(d, at(d.subject_event_id)), STYLES.get(d.decision, ""))
    for alert in show.strongest(fired.drift):
        display.line(show.drift_line(alert), "magenta")
    for finding in fired.findings:
        display.line(show.integrity_line(finding, at(finding.event_id)), "bold red")


def _summary(run: PlatformRun, out: IO[str]) -> None:
    fired = run.fired
    judged = [d for d in fired.decisions if d.decision != "allow"]
    print(f"\nThe detectors read {run.events} events (alert events included) and raised "
          f"{len(judged)} policy decisions, {len(fired.drift)} drift alert events and "
          f"{len(fired.findings)} integrity alert event(s), each published as a signed alert "
          "event. By regime:", file=out)  # fmt: skip
    for line in show.tally(judged):
        print(line, file=out)
    print(show.drift_summary(fired.drift), file=out)
    streams = sorted({f.stream for f in fired.findings})
    print(f"  {'integrity':<22} " + (", ".join(streams) or "nothing found"), file=out)
