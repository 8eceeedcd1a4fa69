"""The faust-streaming app: agents wiring the core detectors to the topics.

- ``policy``: assets, movements, training runs and deployments, one event at a time, with the
  detector's state in a changelog-backed GlobalTable (every worker sees all lineage state, and a
  restarted worker rebuilds it from the changelog);
- ``predictions``: the high-volume topic, consumed in batches (``take``), judged against the
  model constraints in that table; each (model, serving country, day) is judged once per worker;
- ``integrity``: every audit topic, one event at a time, with stream heads in a changelog-backed
  table: gaps, duplicates, reordering, broken chains, bad signatures.

Alerts are emitted through the producer SDK (hash-chained, spooled). Records that do not decode go
to the dead-letter topic with the reason; no record stops a worker. Delivery is at least once:
after a crash, replayed events yield the same deterministic alert ids, which the store dedups.
"""

from __future__ import annotations

import json
from typing import Any

import faust

from auditline.catalogue import Catalogue
from auditline.codec import make_codec
from auditline.errors import AuditlineError
from auditline.events import (
    AssetDeclared,
    DataMovement,
    Event,
    IntegrityAlert,
    ModelDeployed,
    PolicyViolation,
    Prediction,
    TrainingRun,
)
from auditline.policy.engine import PolicyEngine
from auditline.policy.model import load_policy
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings
from auditline.topics import ensure_topics, partition_count
from auditline.verify import ChainVerifier, StreamHead

from .alerts import integrity_body, violation_body


class JsonTable:
    """A faust table of JSON text seen as a mapping of plain values (the detector's state)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.table.get(key)
        return json.loads(raw) if raw is not None else default

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.table[key] = json.dumps(value, separators=(",", ":"))

    def __contains__(self, key: object) -> bool:
        return key in self.table


class HeadTable:
    """ChainVerifier state (stream -> StreamHead) over a JSON table."""

    def __init__(self, table: JsonTable) -> None:
        self.table = table

    def get(self, key: str, default: StreamHead | None = None) -> StreamHead | None:
        raw = self.table.get(key)
        return StreamHead(raw["next_sequence"], raw["last_hash"]) if raw else default

    def __setitem__(self, key: str, head: StreamHead) -> None:
        self.table[key] = {"next_sequence": head.next_sequence, "last_hash": head.last_hash}


class _ReadOnly(dict[str, Any]):
    """Table reads for the batched predictions path; its writes (the once-a-day markers) stay
    local, since faust tables take writes only inside per-event iteration."""

    def __init__(self, table: Any) -> None:
        super().__init__()
        self.table = table

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, self.table.get(key, default))

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key) if super().__contains__(key) else self.table[key]

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or key in self.table


class Processors:
    """The app, its topics and tables, and the agents' bodies (decode, call, send)."""

    def __init__(self, settings: AuditlineSettings) -> None:
        self.settings = settings
        self.catalogue = Catalogue(settings.topic_prefix)
        self.codec = make_codec(settings, self.catalogue)
        self.policy = load_policy(settings.policy_path)
        self.engine = PolicyEngine(self.policy)
        conf = settings.kafka.client_conf()
        ensure_topics(conf, [*self.catalogue.topics, self.catalogue.dead_letter_topic])
        # faust tables need changelogs with the source topics' partition count
        partitions = partition_count(conf, self.catalogue.topics)
        self.app = faust.App(
            f"{settings.topic_prefix}-streams",
            broker=f"kafka://{settings.kafka.bootstrap_servers}",
            store="memory://",
            value_serializer="raw",
            key_serializer="raw",
            web_enabled=False,
            producer_acks=-1,
            topic_partitions=partitions,
        )
        audit: list[type[Event]] = [AssetDeclared, DataMovement, TrainingRun, ModelDeployed]
        self.audit_names = [self.catalogue.for_model(m).topic for m in audit]
        self.predictions_name = self.catalogue.for_model(Prediction).topic
        self.dead_letters = self._topic(self.catalogue.dead_letter_topic)
        self.state = JsonTable(self._table("policy-state"))
        self.heads = HeadTable(JsonTable(self._table("stream-heads")))
        self.served: set[str] = set()
        self._producer: AuditProducer | None = None
        self.app.agent(self._topic(*self.audit_names), name="policy")(self.policy_agent)
        self.app.agent(self._topic(self.predictions_name), name="predictions")(
            self.predictions_agent
        )
        everything = self._topic(*self.audit_names, self.predictions_name)
        self.app.agent(everything, name="integrity")(self.integrity_agent)

    def _table(self, name: str) -> Any:
        """A changelog-backed table every worker holds whole (lineage state is global)."""
        return self.app.GlobalTable(name, default=None, key_type=str, value_type=str)

    def _topic(self, *names: str) -> Any:
        return self.app.topic(*names, value_serializer="raw", key_serializer="raw")

    @property
    def producer(self) -> AuditProducer:
        if self._producer is None:
            self._producer = AuditProducer(self.settings)
        return self._producer

    async def decode(self, message: Any, *, dead_letter: bool = True) -> Event | None:
        """The event, or None after dead-lettering the record with the reason."""
        try:
            return self.codec.decode(message.value)
        except AuditlineError as exc:
            if not dead_letter:  # another agent reading the same topic dead-letters it
                return None
            headers = {
                "reason": str(exc).encode(),
                "source_topic": message.topic.encode(),
                "source_partition": str(message.partition).encode(),
                "source_offset": str(message.offset).encode(),
            }
            await self.dead_letters.send(key=message.key, value=message.value, headers=headers)
            return None

    def violations(self, event: Event, state: Any) -> None:
        for decision in self.engine.evaluate(event, state):
            body = violation_body(decision, self.policy.version)
            self.producer.emit(PolicyViolation, event_time=event.envelope.event_time, **body)

    def serve(self, event: Event) -> None:
        """Judge serving once per (model version, country, day) on this worker (no storms)."""
        model = f"{getattr(event, 'model_name', '')}:{getattr(event, 'model_version', '')}"
        country = getattr(getattr(event, "location", None), "country", "")
        key = f"{model}:{country}:{event.envelope.event_time.date()}"
        if key not in self.served:
            self.served.add(key)
            self.violations(event, _ReadOnly(self.state))

    async def policy_agent(self, stream: Any) -> None:
        async for record in stream.events():
            event = await self.decode(record.message)
            if event is not None:
                self.violations(event, self.state)

    async def predictions_agent(self, stream: Any) -> None:
        async for batch in stream.take_events(500, within=0.2):
            for record in batch:
                event = await self.decode(record.message)
                if event is not None:
                    self.serve(event)

    async def integrity_agent(self, stream: Any) -> None:
        verifier = ChainVerifier(self.heads)  # type: ignore[arg-type]
        async for record in stream.events():
            event = await self.decode(record.message, dead_letter=False)
            if event is None:
                continue
            for finding in verifier.observe(event):
                body = integrity_body(finding, event)
                self.producer.emit(IntegrityAlert, event_time=event.envelope.event_time, **body)


def build_app(settings: AuditlineSettings) -> faust.App:
    return Processors(settings).app
