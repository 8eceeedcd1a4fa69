"""The worker's per-model-version stages: drift (streams/drift.py) and model quality
(streams/performance.py).

Both are fed where predictions (and, for model quality, outcomes) are consumed, partitioned by
producer stream, through an internal topic keyed by model version, so that one agent instance
sees all of a version; each keeps its state in a changelog-backed table partitioned like that
topic, written once per batch, and emits its alerts through the owner's outbox. What they learn
from training runs (drift references, model-quality baselines) the audit agent puts in global
tables (``learned``), which the owner flushes with its own (``flush``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, Protocol

from auditline.drift.explain import alert_model
from auditline.drift.offline import load_drift_settings
from auditline.events import Event, PerformanceAlert
from auditline.performance.config import load_performance_settings
from auditline.settings import AuditlineSettings

from .drift import DriftStates, References, partial_of, partials_in, reference_of
from .health import WorkerMetrics
from .performance import (
    Baselines,
    Gate,
    PerformanceStates,
    VersionTable,
    baseline_of,
    input_of,
    partition_of,
)
from .rawschema import RawSchema
from .tables import JsonTable

BATCH, BATCH_WAIT_S = 1000, 0.05  # records per batch, longest wait for a batch to fill
INPUT_BYTES = 256 * 1024  # an internal message at most (Kafka's default limit: 1 MB)
INPUT_MESSAGES = 16  # internal messages per drift or performance batch (at most 4 MiB)


def chunks(records: list[bytes], limit: int) -> list[list[bytes]]:
    """``records`` in runs of at most ``limit`` bytes (a record larger than it alone)."""
    runs: list[list[bytes]] = [[]]
    size = 0
    for record in records:
        if runs[-1] and size + len(record) > limit:
            runs.append([])
            size = 0
        runs[-1].append(record)
        size += len(record) + 1
    return runs


class Owner(Protocol):
    """What the stages need of the worker (``streams.app.Processors``)."""

    app: Any
    settings: AuditlineSettings
    writer: str
    outbox: list[tuple[type[Event], dict[str, Any]]]
    metrics: WorkerMetrics

    def global_table(self, name: str) -> Any: ...

    def raw_topic(self, *names: str) -> Any: ...

    async def decode_batch(self, batch: list[Any]) -> list[tuple[Event, Any]]: ...

    def flush(self) -> None: ...

    def send_alerts(self) -> None: ...


def internal_topics(app_id: str) -> list[str]:
    """The internal topics the stages consume (the owner's inputs besides the event topics)."""
    return [f"{app_id}-drift-partials", f"{app_id}-performance-inputs"]


class ModelStages:
    """The drift and model-quality wiring: tables, internal topics and agents."""

    def __init__(self, owner: Owner, partitions: int, outcomes_topic: str) -> None:
        self.owner, self.partitions = owner, partitions
        app, writer = owner.app, owner.writer
        partials_name, inputs_name = internal_topics(app.conf.id)
        # drift: references (global), partial counts, state by model version
        self.references = JsonTable(owner.global_table("drift-references"), writer=writer)
        self.drift_references = References(self.references)
        self.drift_partials = self._internal(partials_name)
        drift_table = app.Table(
            "drift-state", default=None, key_type=str, value_type=str, use_partitioner=True
        )
        self.drift_table = JsonTable(drift_table)
        self.drift_states = DriftStates(
            self.drift_table, self.drift_references, load_drift_settings(owner.settings.drift_path)
        )
        # model quality: baselines and versions with outcomes (global), inputs, keyed state
        self.baseline_table = JsonTable(owner.global_table("performance-baselines"), writer=writer)
        self.baselines = Baselines(self.baseline_table)
        self.joining_table = JsonTable(owner.global_table("performance-joining"), writer=writer)
        settings = load_performance_settings(owner.settings.performance_path)
        self.gate = Gate(self.baselines, self.joining_table, settings)
        self.performance_inputs = self._internal(inputs_name)
        performance_table = app.tables.add(
            VersionTable(
                app, name="performance-state", default=None, key_type=str, value_type=str,
                partitions=partitions, beacon=app.tables.beacon,
            )
        )  # fmt: skip
        self.performance_table = JsonTable(performance_table)
        self.performance_states = PerformanceStates(
            self.performance_table, self.baselines, settings
        )
        app.agent(self.drift_partials, name="drift")(self.drift_agent)
        app.agent(owner.raw_topic(outcomes_topic), name="outcomes")(self.outcomes_agent)
        app.agent(self.performance_inputs, name="performance")(self.performance_agent)

    def _internal(self, name: str) -> Any:
        return self.owner.app.topic(
            name, partitions=self.partitions, internal=True, schema=RawSchema()
        )

    def learned(self, event: Event) -> None:
        """An audit event: a completed training run's drift reference and baseline."""
        reference = reference_of(event)
        if reference is not None:
            self.references[reference[0]] = reference[1]
        baseline = baseline_of(event)
        if baseline is not None:
            self.baseline_table[baseline[0]] = baseline[1]

    def flush(self) -> None:
        """The global tables written by the feeding agents (with the owner's, per batch)."""
        self.references.flush()
        self.baseline_table.flush()
        self.joining_table.flush()

    async def predicted(self, decoded: list[tuple[Event, Any]]) -> None:
        """A batch's prediction events: their partial drift counts, one record per model
        version, a JSON list of them in source order (one internal message per version and
        batch, not per event), and their model-quality inputs."""
        partials = by_version(
            partial_of(event, message, self.drift_references) for event, message in decoded
        )
        for version, records in partials.items():
            for chunk in chunks(records, INPUT_BYTES):
                await self.drift_partials.send(
                    key=version.encode(), value=b"[%s]" % b",".join(chunk)
                )
        await self.to_performance(decoded)

    async def to_performance(self, decoded: list[tuple[Event, Any]]) -> None:
        """A batch's model-quality inputs: one record per model version, a JSON list of them in
        source order (one internal message per version and batch, not per event)."""
        inputs = by_version(input_of(event, message, self.gate) for event, message in decoded)
        for version, records in inputs.items():
            # the baseline goes along: the worker that joins may not have read it yet
            known = self.baselines.get(version)  # (the gate let them through: it is known)
            baseline = json.dumps(known.to_json() if known else None, separators=(",", ":"))
            for chunk in chunks(records, INPUT_BYTES):
                value = b'{"baseline":%s,"inputs":[%s]}' % (baseline.encode(), b",".join(chunk))
                await self.performance_inputs.send(
                    key=version.encode(), value=value,
                    partition=partition_of(version, self.partitions),
                )  # fmt: skip

    async def outcomes_agent(self, stream: Any) -> None:
        """Outcomes: their producer streams checked, then on to their model version's join."""
        owner = self.owner
        async for batch in stream.take_events(BATCH, within=BATCH_WAIT_S):
            started = time.perf_counter()
            await self.to_performance(await owner.decode_batch(batch))
            owner.flush()
            owner.metrics.took((r.message.topic for r in batch), "outcomes", started)

    async def drift_agent(self, stream: Any) -> None:
        """Partials of one model version arrive on one partition: merge, release, alert."""
        owner = self.owner
        async for batch in stream.take_events(INPUT_MESSAGES, within=BATCH_WAIT_S):
            started = time.perf_counter()
            generation = owner.app.consumer_generation_id
            for record in batch:
                key = record.message.key.decode()
                for partial in partials_in(record.message.value):  # a source batch's, in order
                    for body in self.drift_states.merge(key, partial, generation):
                        alert = {**body, "event_time": body["window_end"]}
                        owner.outbox.append((alert_model(body), alert))
            self.drift_states.flush()
            owner.send_alerts()  # spooled before the state that says they were raised
            self.drift_table.flush()
            owner.metrics.took((r.message.topic for r in batch), "drift", started)

    async def performance_agent(self, stream: Any) -> None:
        """Inputs of one model version arrive on one partition: join, judge, alert."""
        owner = self.owner
        async for batch in stream.take_events(INPUT_MESSAGES, within=BATCH_WAIT_S):
            started = time.perf_counter()
            generation = owner.app.consumer_generation_id
            states = self.performance_states
            for record in batch:
                version = record.message.key.decode()
                received = json.loads(record.message.value)  # a source batch's inputs
                states.baselines.learn(version, received["baseline"])
                for one in received["inputs"]:
                    for body in states.merge(version, one, generation):
                        owner.outbox.append(
                            (PerformanceAlert, {**body, "event_time": body["window_end"]})
                        )
            states.flush()
            owner.metrics.judged(states.take_reports())
            # no await from here on: the alerts are spooled, then the table's changelog records
            # are queued (so they cannot leave the process first: streams/performance.py)
            owner.send_alerts()
            self.performance_table.flush()
            owner.metrics.took((r.message.topic for r in batch), "performance", started)


def by_version(found: Iterable[tuple[str, bytes] | None]) -> dict[str, list[bytes]]:
    """The records of a batch grouped by model version, in source order (None: no record)."""
    groups: dict[str, list[bytes]] = {}
    for item in found:
        if item is not None:
            groups.setdefault(item[0], []).append(item[1])
    return groups
