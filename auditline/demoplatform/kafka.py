"""``auditline demo --kafka BOOTSTRAP``: the same platform day through a real broker and the
processes a deployment runs.

The teams' producers send over Kafka, to topics of the demo's own prefix (created up front), one
payment movement rewritten in transit by its relay. ``auditline worker`` (faust) judges
everything (policy with lineage, integrity, drift) and publishes the alerts, signed with the
demo's key; ``auditline sink`` stores every topic in an embedded store of the demo's own, which
it owns while it runs; ``auditline alerts tail`` prints the alerts as they fire
(``deployment``). The demo then waits, each wait bounded, until the worker has judged
everything and the sink has stored it, and asks the auditor's questions of the sink's store
(``StoreAccess``, from ``auditline.sinks.demo``).

The worker's drift windows close on event time, five minutes after their end, so one small
batch served at 17:07 moves it past the day's last window (the embedded runner closes that
window at the end of input instead); the 17:00 window it opens has too few predictions to be
judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from auditline.catalogue import Catalogue
from auditline.demo import DemoKeys
from auditline.demoplatform import serving
from auditline.demoplatform.deployment import Deployment, Layout
from auditline.demoplatform.offsets import Offsets
from auditline.demoplatform.processes import Lines
from auditline.demoplatform.run import Platform, play
from auditline.demoplatform.show import Display, StoredAlerts
from auditline.demoplatform.story import data_steps
from auditline.errors import UnavailableError
from auditline.events import (
    AssetDeclared,
    DataMovement,
    DataQualityAlert,
    DriftAlert,
    Event,
    IntegrityAlert,
    ModelDeployed,
    PolicyViolation,
    Prediction,
    TrainingRun,
)
from auditline.settings import ClickHouseSettings, load_settings
from auditline.topics import ensure_topics, require_broker

JUDGED_S, STORED_S, SETTLE_S, PRINTED_S = 120.0, 60.0, 2.0, 10.0
FOLLOW_UPS = ("auditline alerts tail --from-beginning --idle-exit 5",)


class StoreAccess(Protocol):
    """The sink's store as the demo reads it (``auditline.sinks.demo.SinkStore``)."""

    def stored(self) -> int: ...

    def alerts(self) -> StoredAlerts: ...

    def view(self, tampered: str, out: IO[str]) -> bool: ...

    def follow_ups(self, out: IO[str], env: dict[str, str], commands: tuple[str, ...]) -> None: ...

    def close(self) -> None: ...


OpenStore = Callable[[ClickHouseSettings, Path], StoreAccess]


def wait_for(done: Callable[[], bool], timeout: float, deployment: Deployment,
             failure: Callable[[], str]) -> float:  # fmt: skip
    """Seconds until ``done()``; an ``UnavailableError`` saying ``failure()`` past ``timeout``,
    or naming the log of a process that exits meanwhile."""
    started = time.monotonic()
    while not done():
        deployment.check()
        if time.monotonic() - started > timeout:
            raise UnavailableError(failure())
        time.sleep(0.5)
    return time.monotonic() - started


class KafkaStage:
    """The worker judges (``play``'s stage); the alert service prints what fires."""

    extra_batches: tuple[serving.Batch, ...] = (serving.Batch(serving.HOURS, 0),)  # at 17:07

    def __init__(self, deployment: Deployment, offsets: Offsets, catalogue: Catalogue,
                 lines: Lines) -> None:  # fmt: skip
        self.deployment, self.offsets, self.lines = deployment, offsets, lines
        self.training = catalogue.for_model(TrainingRun).topic

    def judged(self, display: Display) -> None:
        """The alert service's lines go above the live display; a process that died ends it."""
        self.lines.to = display.line
        self.deployment.check()

    def before_serving(self) -> None:
        """Predictions of a version whose training run the worker has not read yet are not
        counted for drift: wait until it has read the training topic to its end."""
        wait_for(lambda: self.offsets.lag([self.training]) == 0, JUDGED_S, self.deployment,
                 lambda: f"the worker did not read the training run within {JUDGED_S:.0f} s: "
                 f"see {self.deployment.log('worker')}")  # fmt: skip

    def finish(self, display: Display) -> None:
        """Nothing to flush: the worker's windows close on event time."""


class Settled:
    """The worker has judged everything: its group has committed the end of every input, and
    no alert has been added for ``SETTLE_S`` (held events are released on a one-second tick)."""

    def __init__(self, offsets: Offsets, catalogue: Catalogue) -> None:
        self.offsets = offsets
        audit: list[type[Event]] = [AssetDeclared, DataMovement, TrainingRun, ModelDeployed,
                                    Prediction]  # fmt: skip
        self.inputs = [catalogue.for_model(m).topic for m in audit]
        self.inputs.append(f"{catalogue.topic_prefix}-streams-drift-partials")  # streams/app.py
        self.alerts = alert_topics(catalogue)
        self.lag, self.written, self.since = -1, -1, time.monotonic()

    def __call__(self) -> bool:
        self.lag = self.offsets.lag(self.inputs)
        written = self.offsets.ends(self.alerts)
        if self.lag or written != self.written:
            self.written, self.since = written, time.monotonic()
            return False
        return time.monotonic() - self.since >= SETTLE_S


def alert_topics(catalogue: Catalogue) -> list[str]:
    kinds = (PolicyViolation, DriftAlert, DataQualityAlert, IntegrityAlert)
    return [catalogue.for_model(m).topic for m in kinds]


@dataclass
class Outcome:
    """How the Kafka run went; ``ok`` when it is complete and every expected finding is there."""

    tampered: str
    delivered: bool
    produced: int = 0
    stored: int = 0
    view_ok: bool = False
    alerts: StoredAlerts = field(default_factory=lambda: StoredAlerts((), (), ()))

    @property
    def missing(self) -> list[str]:
        """The findings the day must raise that the worker's stored alerts lack."""
        expected = {s.expect for s in [*data_steps(), *serving.ml_steps()]} - {"lawful", "TAMPERED"}
        rules = {rule for rule, _, _ in self.alerts.rules}
        missing = [f"violations of {rule}" for rule in sorted(expected - rules)]
        states = {a["state"] for a in self.alerts.drift}
        missing += [f"a drift episode {s}" for s in ("opened", "closed") if s not in states]
        if self.alerts.integrity != (self.tampered,):
            missing.append(f"an integrity alert on {self.tampered} (and on no other stream)")
        return missing

    @property
    def ok(self) -> bool:
        complete = self.delivered and self.stored == self.produced
        return complete and self.view_ok and not self.missing


class KafkaRun:
    """One run: the layout, the broker's offsets, the three processes and the sink's store."""

    def __init__(self, keys: DemoKeys, bootstrap: str, out: IO[str], open_store: OpenStore):
        settings = load_settings(kafka={"bootstrap_servers": bootstrap})
        conf = settings.kafka.client_conf()
        try:
            require_broker(conf, settings.kafka.connect_timeout_s)
        except UnavailableError as exc:
            raise UnavailableError(
                f"no Kafka broker answered at {bootstrap} within "
                f"{settings.kafka.connect_timeout_s:.0f} s: start one there, or give --kafka the "
                "address of one (make kafka-up starts a local one at 127.0.0.1:9092)"
            ) from exc
        self.keys, self.bootstrap, self.out = keys, bootstrap, out
        self.layout = Layout.new()
        self.catalogue = Catalogue(self.layout.prefix)
        ensure_topics(conf, [*self.catalogue.topics, self.catalogue.dead_letter_topic])
        self.lines = Lines(out)
        self.offsets = Offsets(conf, f"{self.layout.prefix}-streams")  # the worker's group
        self.store = open_store(self.layout.store, keys.keyring)

    def run(self) -> Outcome:
        self._say(f"auditline demo: a multi-region ML platform on 2 March 2026 (UTC), through "
                  f"Kafka at {self.bootstrap}\n(producer SDK -> Kafka -> auditline worker: policy "
                  "engine, chain verifier, drift and model-quality detectors -> alert topics -> "
                  "auditline alerts tail; auditline sink -> embedded store)\n\n"
                  f"topics {self.layout.prefix}.*\n"
                  f"folder {self.layout.folder} (store, spools, logs)\nstarting auditline worker,"
                  " auditline sink and auditline alerts tail")  # fmt: skip
        try:
            with Deployment(self.layout, self.keys, self.bootstrap, self.lines) as deployment:
                outcome = self._through(deployment)
        finally:
            self.store.close()
            self.offsets.close()
        self._say(f"\nstopped the worker, the sink and the alert service; their logs are in "
                  f"{self.layout.folder / 'logs'}")  # fmt: skip
        return outcome

    def _through(self, deployment: Deployment) -> Outcome:
        worker, sink = deployment.wait_ready()
        self._say(f"worker ready after {worker:.1f} s, sink after {sink:.1f} s; the alert "
                  "service prints each alert as it fires (one batch more than on the embedded "
                  "default, at 17:07, moves the worker's event-time drift windows past the "
                  "day's last one)\n")  # fmt: skip
        outcome = self._play(KafkaStage(deployment, self.offsets, self.catalogue, self.lines))
        self.lines.to = None
        self._settle(deployment, outcome)
        self._printed(deployment)
        outcome.alerts = self.store.alerts()
        self._summary(outcome)
        outcome.view_ok = self.store.view(outcome.tampered, self.out)
        env = {"AUDITLINE_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
               "AUDITLINE_TOPIC_PREFIX": self.layout.prefix}  # fmt: skip
        self.store.follow_ups(self.out, env, FOLLOW_UPS)
        self.store.close()  # before the sink, its owner, stops
        return outcome

    def _play(self, stage: KafkaStage) -> Outcome:
        from auditline.producer.kafka import KafkaTransport

        spool = {"path": self.layout.folder / "spool", "fsync": "never"}
        base = {"kafka": {"bootstrap_servers": self.bootstrap},
                "topic_prefix": self.layout.prefix, "spool": spool}  # fmt: skip
        platform = Platform(self.keys, base, lambda s: KafkaTransport(s.kafka.client_conf()))
        delivered = play(platform, stage, self.out)
        return Outcome(platform.tampered, delivered)

    def _settle(self, deployment: Deployment, outcome: Outcome) -> None:
        """Wait until the worker has judged everything, then until the sink has stored it all."""
        self._say("\nevery team's producer closed (final checkpoints sent); waiting for the "
                  "worker and the sink")  # fmt: skip
        settled = Settled(self.offsets, self.catalogue)
        judged = wait_for(settled, JUDGED_S, deployment, lambda: (
            f"the worker still had {settled.lag} records to judge after {JUDGED_S:.0f} s: see "
            f"{deployment.log('worker')}"))  # fmt: skip
        outcome.produced = self.offsets.ends(self.catalogue.topics)
        stored = wait_for(lambda: self.store.stored() >= outcome.produced, STORED_S, deployment,
                          lambda: f"the sink stored {self.store.stored()} of "
                          f"{outcome.produced} events within {STORED_S:.0f} s: see "
                          f"{deployment.log('sink')}")  # fmt: skip
        outcome.stored = self.store.stored()
        self._say(f"the worker had judged everything {judged:.1f} s later, and the sink had "
                  f"stored all {outcome.produced} events {stored:.1f} s after that")  # fmt: skip

    def _printed(self, deployment: Deployment) -> None:
        """Give the alert service the time to print the last alerts (bounded), then stop it."""
        alerts, deadline = self.offsets.ends(alert_topics(self.catalogue)), time.monotonic()
        while self.lines.count < alerts and time.monotonic() < deadline + PRINTED_S:
            time.sleep(0.2)
        deployment.stop("alert service")

    def _summary(self, outcome: Outcome) -> None:
        alerts = outcome.alerts
        decisions = sum(n for _, _, n in alerts.rules)
        self._say(f"\nThe worker raised {decisions} policy decisions, {len(alerts.drift)} "
                  f"drift alert events and integrity alerts on {len(alerts.integrity)} "
                  "stream(s), each published as a signed alert event and stored by the sink. "
                  "By regime:")  # fmt: skip
        for line in alerts.summary():
            self._say(line)
        if outcome.missing:
            self._say("  MISSING: " + "; ".join(outcome.missing))

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def run_kafka(keys: DemoKeys, bootstrap: str, out: IO[str], open_store: OpenStore) -> Outcome:
    """The platform day through the broker at ``bootstrap`` and the three processes."""
    return KafkaRun(keys, bootstrap, out, open_store).run()
