"""The faust-streaming app: agents wiring the core detectors to the topics.

- ``audit``: assets, movements, training runs and deployments, judged by the policy engine with
  its state in a changelog-backed GlobalTable (every worker sees all lineage state, and a
  restarted worker rebuilds it from the changelog);
- ``predictions``: judged against the model constraints in that table; each (model version,
  serving country, day) is judged once per worker, so the per-event work is a set lookup;
- ``drift`` and ``performance``, with the ``outcomes`` agent: per model version, over internal
  topics keyed by it (streams/models.py).

Both agents decode each record once and check its producer stream first (integrity: gaps,
duplicates, reordering, broken chains, bad signatures; stream heads in a second GlobalTable). The
chain hash is taken over the record's own bytes (``canonical_from_body``), not a re-encoding.
Records come in batches (``take_events``): table writes are buffered per batch
(``JsonTable.flush``; the tables use the key partitioner, so they may be written outside
per-event iteration; a worker applies the other workers' table writes, never its own read
back: ``streams/tables.py``), and each audit batch is judged in event-time order; an event whose
lineage has not been read yet waits in the policy state until it has, or until every audit
partition, the other workers' included, has been read past it (``Deferrals``, ``Progress``: each
worker publishes how far it has read in the shared state).

Alerts are emitted through the producer SDK (hash-chained, spooled). Records that do not decode go
to the dead-letter topic with the reason; no record stops a worker. Delivery is at least once:
after a crash, events read again yield the same deterministic alert ids, which the store dedups,
and are not checked twice for integrity (``ChainJudge``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from mode.types.signals import BaseSignalT

from auditline.alerting.bodies import integrity_body, violation_body
from auditline.catalogue import Catalogue
from auditline.codec import make_codec
from auditline.collector import collect_due
from auditline.errors import AuditlineError
from auditline.events import (
    AssetDeclared,
    DataMovement,
    DataQualityAlert,
    DriftAlert,
    Event,
    IntegrityAlert,
    ModelDeployed,
    Outcome,
    PerformanceAlert,
    PolicyViolation,
    Prediction,
    PredictionBatch,
    TrainingRun,
)
from auditline.integrity.keyring import verification_keys
from auditline.policy.counters import Shards
from auditline.policy.decisions import Decision
from auditline.policy.deferral import Deferrals, event_millis
from auditline.policy.engine import PolicyEngine
from auditline.policy.model import load_policy
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from auditline.topics import ensure_topics, partition_count

from . import consumer, health, runtime
from .integrity import ChainJudge
from .models import BATCH, BATCH_WAIT_S, ModelStages, internal_topics
from .progress import Progress
from .rawschema import RawSchema
from .runtime import GC_INTERVAL_S, QuietWorker, UncountedMonitor
from .tables import JsonTable, LocalOverlay, WriterAwareGlobalTable, new_writer_tag

log = logging.getLogger(__name__)
AUDIT_KINDS: list[type[Event]] = [AssetDeclared, DataMovement, TrainingRun, ModelDeployed]
IDLE_RELEASE_S = 1.0  # how often an idle worker publishes its read progress and releases


class Processors:
    """The app, its topics and tables, and the agents' bodies (decode, call, send)."""

    def __init__(self, settings: AuditlineSettings) -> None:
        self.settings = settings
        self.catalogue = Catalogue(settings.topic_prefix)
        self.codec = make_codec(settings, self.catalogue)
        # the readers of every kind the agents take, compiled before the worker says it is ready
        self.codec.prepare([*AUDIT_KINDS, Prediction, PredictionBatch, Outcome])
        self.policy = load_policy(settings.policy_path)
        conf = settings.kafka.client_conf()
        ensure_topics(conf, [*self.catalogue.topics, self.catalogue.dead_letter_topic])
        # faust tables need changelogs with the source topics' partition count
        partitions = partition_count(conf, self.catalogue.topics)
        # each input partition number (held by one worker at a time) adds to its own shard of
        # the shared yearly counters, so workers never overwrite each other's additions
        self.engine = PolicyEngine(self.policy, Shards.partitions(partitions))
        self.app = faust.App(
            f"{settings.topic_prefix}-streams",
            broker=f"kafka://{settings.kafka.bootstrap_servers}",
            store="memory://",
            value_serializer="raw",
            key_serializer="raw",
            web_enabled=False,
            producer_acks=-1,
            topic_partitions=partitions,
            # a restarted worker rejoins quickly: a killed member is dropped after 10 s
            broker_session_timeout=10.0,
            broker_heartbeat_interval=3.0,
            GlobalTable=WriterAwareGlobalTable,  # see streams/tables.py
            Worker=QuietWorker,  # see streams/runtime.py
            Monitor=UncountedMonitor,  # see streams/runtime.py
        )
        self.audit_names = [self.catalogue.for_model(m).topic for m in AUDIT_KINDS]
        self.predictions_name = self.catalogue.for_model(Prediction).topic
        self.outcomes_name = self.catalogue.for_model(Outcome).topic
        # the group starts from committed offsets, never from a reset (see streams/consumer.py)
        inputs = [
            *self.audit_names, self.predictions_name, self.outcomes_name,
            *internal_topics(self.app.conf.id),
        ]  # fmt: skip
        consumer.commit_start_offsets(conf, self.app.conf.id, inputs)
        consumer.install(self.app)
        runtime.install(self.app)  # its producer (see streams/runtime.py)
        self.dead_letters = self.raw_topic(self.catalogue.dead_letter_topic)
        self.writer = new_writer_tag()  # this process's writes, told from everybody else's
        self.state = JsonTable(self.global_table("policy-state"), writer=self.writer)
        self.head_table = JsonTable(self.global_table("stream-heads"), writer=self.writer)
        self.chains = ChainJudge(self.head_table, verification_keys(settings))
        self._deferrals: dict[int, Deferrals] = {}  # by input partition number
        self.progress = Progress(self.audit_names, partitions)
        self._in_batch = False  # the audit agent is between taking a batch and flushing it
        self.serving_state = LocalOverlay(self.state)
        self._producer: AuditProducer | None = None
        self._closed = False  # the worker is stopping and its alert producer closed
        self.outbox: list[tuple[type[Event], dict[str, Any]]] = []  # alerts of the current batch
        self.app.agent(self.raw_topic(*self.audit_names), name="audit")(self.audit_agent)
        self.app.timer(IDLE_RELEASE_S, name="auditline-read-progress")(self.idle_release)
        self.app.timer(GC_INTERVAL_S, name="auditline-gc")(self.collect_garbage)
        self.app.agent(self.raw_topic(self.predictions_name), name="predictions")(
            self.predictions_agent
        )
        self.models = ModelStages(self, partitions, self.outcomes_name)
        self.metrics = health.WorkerMetrics()
        self.readiness = health.install(self, settings, inputs)
        self.app.on_before_shutdown.connect(self.closing)

    def global_table(self, name: str) -> Any:
        """A changelog-backed table every worker holds whole (lineage state is global)."""
        # use_partitioner: written from batches, outside per-event iteration (a global table is
        # read whole by every worker, so the key's partition does not matter); other workers'
        # records applied as they arrive, this process's own not at all (streams/tables.py)
        return self.app.GlobalTable(
            name, default=None, key_type=str, value_type=str, use_partitioner=True,
            recovery_buffer_size=1,
        )  # fmt: skip

    def raw_topic(self, *names: str) -> Any:
        return self.app.topic(*names, schema=RawSchema())

    @property
    def producer(self) -> AuditProducer:
        if self._producer is None:
            self._producer = AuditProducer(self.settings)
        return self._producer

    @property
    def alert_producer(self) -> AuditProducer | None:
        """The producer of this worker's alerts, once opened (``build_app``), until closed."""
        return self._producer

    def held(self) -> int:
        """Audit events waiting for lineage this worker has not read yet."""
        return sum(deferrals.waiting() for deferrals in list(self._deferrals.values()))

    async def dead_letter(self, message: Any, error: AuditlineError) -> None:
        """Send a record that does not decode to the dead-letter topic, with the reason."""
        headers = {
            "reason": str(error).encode(),
            "source_topic": message.topic.encode(),
            "source_partition": str(message.partition).encode(),
            "source_offset": str(message.offset).encode(),
        }
        await self.dead_letters.send(key=message.key, value=message.value, headers=headers)
        self.metrics.dead_letters.labels(message.topic).inc()

    async def decode_batch(self, batch: list[Any]) -> list[tuple[Event, Any]]:
        """Decode a batch once for all checks: each event's chain first, in arrival order (a
        record read again after a restart is not checked twice: streams/integrity.py). Policy
        decisions of a record read again repeat with the same ids. A record that does not
        decode is dead-lettered with the reason."""
        events = []
        decode, judge = self.codec.decode_with_body, self.chains.judge
        for record in batch:
            message = record.message
            try:
                event, body = decode(message.value)
            except AuditlineError as exc:
                await self.dead_letter(message, exc)
                continue
            findings = judge(event, body, message)
            for finding in findings or ():
                alert = {**integrity_body(finding, event), "event_time": event.envelope.event_time}
                self.outbox.append((IntegrityAlert, alert))  # (not aliased: awaits above)
            events.append((event, message))
        return events

    def report(self, judged: list[tuple[Event, Decision]]) -> None:
        for event, decision in judged:
            body = violation_body(decision, self.policy.version, event.envelope.trace_id)
            self.outbox.append((PolicyViolation, {**body, "event_time": event.envelope.event_time}))

    def violations(self, event: Event, state: Any) -> None:
        self.report([(event, decision) for decision in self.engine.evaluate(event, state)])

    async def audit_agent(self, stream: Any) -> None:
        async for batch in stream.take_events(BATCH, within=BATCH_WAIT_S):
            started = time.perf_counter()
            self._in_batch = True
            try:
                # what earlier batches read, their state writes flushed: published with this one's
                claims = self.progress.published(self.app.consumer)
                # topics are read side by side: judge each batch in event-time order, and hold back
                # an event whose lineage has not been read yet until it is, or until every partition
                # has been read past it (see auditline.policy.deferral)
                ordered = sorted(await self.decode_batch(batch), key=_event_order)
                self.note_progress(batch, ordered)
                horizon = self.progress.horizon(self.app.consumer, self.state)
                for event, message in ordered:
                    holder = self.deferrals(message.partition)
                    self.report(holder.judge(event, may_wait=True))
                    self.models.learned(event)
                self.release_and_publish(horizon, claims)
            finally:
                self._in_batch = False
            self.metrics.took((r.message.topic for r in batch), "audit", started)

    async def idle_release(self) -> None:
        """Every second between batches: publish how far this worker has read (everything it
        took is judged and flushed), and judge the held events the other workers' progress now
        lets through (an idle worker gets no batch to do it in)."""
        app = self.app
        if self._in_batch or self._closed or app.rebalancing or app.in_recovery:
            return  # (timers run on while the app stops: nothing is released then)
        try:  # a timer's exception would stop the worker (faust crashes the app), an agent's not
            claims = self.progress.published(app.consumer)
            self.release_and_publish(self.progress.horizon(app.consumer, self.state), claims)
        except Exception:
            # the alerts of what was judged stay in the outbox: the next flush sends them
            log.exception("releasing held events between batches failed; retrying next tick")

    def release_and_publish(self, horizon: int, claims: dict[str, int]) -> None:
        """End of a batch or an idle tick: judge the held events ``horizon`` lets through on
        every partition number held here, publish this worker's read progress, flush."""
        for number in self.progress.partitions(self.app.consumer):
            self.report(self.deferrals(number).release(horizon))
        for key, through in claims.items():
            self.state[key] = through
        self.flush()

    async def collect_garbage(self) -> None:
        """Between batches, the garbage collection that came due (see ``runtime.tune_gc``)."""
        collect_due()

    def deferrals(self, partition: int) -> Deferrals:
        """Held events of one input partition number: the audit topics are co-partitioned, so
        one worker holds a number, and workers sharing the global state never write one key."""
        if partition not in self._deferrals:
            state: Any = self.state
            self._deferrals[partition] = Deferrals(self.engine, state, space=f"p{partition}")
        return self._deferrals[partition]

    def note_progress(self, batch: list[Any], ordered: list[tuple[Event, Any]]) -> None:
        """Per partition of the batch, its last offset taken and its latest event time (the
        batch's decoded events in event-time order)."""
        latest = {message.tp: event for event, message in ordered}  # the last is the latest
        # a partition's records come in offset order (the fetch loop drops re-reads)
        last = {record.message.tp: record.message.offset for record in batch}
        for tp, offset in last.items():
            newest = latest.get(tp)
            self.progress.saw(tp, offset, None if newest is None else event_millis(newest))

    async def predictions_agent(self, stream: Any) -> None:
        """Predictions are judged against the model constraints in the policy state; the
        engine marks each (model version, country, day) once, on this worker's overlay."""
        async for batch in stream.take_events(BATCH, within=BATCH_WAIT_S):
            started = time.perf_counter()
            decoded = await self.decode_batch(batch)
            for event, _ in decoded:
                self.violations(event, self.serving_state)
            await self.models.predicted(decoded)
            self.flush()
            self.metrics.took((r.message.topic for r in batch), "predictions", started)

    async def closing(self, app: Any, /, *_: Any, signal: BaseSignalT[Any], **__: Any) -> None:
        """The worker stops (faust sends this once its consumer has stopped): the alert producer
        is closed, so its streams end on a final signed checkpoint instead of reading as
        silenced to a later ``auditline verify``, and what it spooled is delivered."""
        try:
            self.send_alerts()
        except Exception:  # logged: faust's own flush and close must still follow
            log.exception("sending the last alerts while stopping failed")
        finally:
            self._closed = True
            producer, self._producer = self._producer, None
            if producer is not None:
                await asyncio.to_thread(producer.close)

    def flush(self) -> None:
        """End of a batch: buffered table writes, then the batch's alerts."""
        self.state.flush()
        self.head_table.flush()
        self.models.flush()
        self.send_alerts()

    def send_alerts(self) -> None:
        """The buffered alerts, one SDK call (one spool write) per alert kind, in order."""
        if self._closed and self.outbox:  # the producer is closed: no new one to leave unclosed
            log.error("%d alerts raised after the worker began to stop were not sent",
                      len(self.outbox))  # fmt: skip
            self.outbox = []
            return
        alerts, self.outbox = self.outbox, []
        for model in dict.fromkeys(m for m, _ in alerts):
            bodies = [body for m, body in alerts if m is model]
            self.producer.emit_many(model, bodies)
            self.metrics.alerted(_ALERT_KIND[model], bodies)


_ALERT_KIND = {
    PolicyViolation: "violation", IntegrityAlert: "integrity", DriftAlert: "drift",
    DataQualityAlert: "quality", PerformanceAlert: "performance",
}  # fmt: skip


def _event_order(decoded: tuple[Event, Any]) -> tuple[Any, ...]:
    envelope = decoded[0].envelope
    return (envelope.event_time, envelope.stream, envelope.sequence)


def build_app(settings: AuditlineSettings) -> faust.App:
    """The worker's app, its alert producer opened before it starts: what that producer's spool
    kept from an earlier run (alerts not yet acknowledged by the broker) is sent now rather than
    with the next alert, and the first batch does not pay for opening it."""
    processors = Processors(settings)
    if pending := processors.producer.pending:
        log.info("%d alerts spooled by an earlier run of this worker are being sent", pending)
    return processors.app
