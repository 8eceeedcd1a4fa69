"""Event → row mapping for every table (pure: no I/O, no client).

Node ids: ``<asset_id>`` for assets as their producers name them, ``run:<run_id>``,
``model:<name>:<version>``, ``deployment:<id>``. Edges point downstream:

| event | edges |
| --- | --- |
| AssetDeclared | each of ``derived_from`` → asset (``derived_from``) |
| DataMovement | asset → target asset (``moved_to``), when a new asset results |
| TrainingRun (completed) | each input → run (``trained_on``), run → model version (``produced``) |
| ModelDeployed | model version → deployment (``deployed_to``); a retirement closes it |
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditline.events import (
    AssetDeclared,
    DataMovement,
    DriftAlert,
    Event,
    IntegrityAlert,
    ModelDeployed,
    PolicyViolation,
    Prediction,
    PredictionBatch,
    RunStatus,
    TrainingRun,
)

AUDIT_COLUMNS = (
    "event_id",
    "event_time",
    "kind",
    "stream",
    "sequence",
    "prev_hash",
    "hash",
    "signature_key_id",
    "signature",
    "producer_service",
    "producer_instance",
    "producer_country",
    "tenant",
    "trace_id",
    "schema_version",
    "asset_id",
    "model_name",
    "model_version",
    "classification",
    "source_country",
    "destination_country",
    "purpose",
    "topic",
    "partition",
    "offset",
    "payload",
)
NODE_COLUMNS = ("node_id", "node_type", "name", "country", "attributes", "valid_from", "event_id")
EDGE_COLUMNS = ("src", "dst", "edge_type", "valid_from", "valid_to", "event_id", "attributes")
PREDICTION_COLUMNS = (
    "event_id",
    "row",
    "prediction_id",
    "event_time",
    "model_name",
    "model_version",
    "country",
    "region",
    "subject_jurisdiction",
    "score",
    "label",
    "sample_rate",
)
VIOLATION_COLUMNS = (
    "violation_id",
    "event_id",
    "event_time",
    "decision",
    "severity",
    "rule_id",
    "rule_version",
    "policy_version",
    "subject_event_id",
    "message",
    "evidence_event_ids",
    "facts",
)
DRIFT_COLUMNS = (
    "alert_id",
    "event_id",
    "event_time",
    "state",
    "severity",
    "model_name",
    "model_version",
    "feature",
    "statistic",
    "value",
    "threshold",
    "window_start",
    "window_end",
    "training_run_id",
)
INTEGRITY_COLUMNS = (
    "alert_id",
    "event_id",
    "event_time",
    "kind",
    "severity",
    "stream",
    "expected_sequence",
    "observed_sequence",
    "subject_event_id",
    "detail",
)


@dataclass(frozen=True)
class Located:
    """A decoded event with where it was read from."""

    event: Event
    topic: str
    partition: int
    offset: int


@dataclass
class Rows:
    """Rows per table for a batch of events."""

    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.tables.setdefault(table, []).append(row)


def model_node(name: str, version: str) -> str:
    return f"model:{name}:{version}"


def audit_row(item: Located) -> tuple[Any, ...]:
    event, env = item.event, item.event.envelope
    facts = _typed_facts(event)
    signature = env.signature
    return (
        env.event_id,
        env.event_time,
        type(event).__name__,
        env.stream,
        env.sequence,
        env.prev_hash,
        env.hash,
        signature.key_id if signature else None,
        signature.value.hex() if signature else None,
        env.producer.service,
        env.producer.instance,
        env.producer.location.country,
        env.tenant,
        env.trace_id,
        env.schema_version,
        facts.get("asset_id"),
        facts.get("model_name"),
        facts.get("model_version"),
        facts.get("classification"),
        facts.get("source_country"),
        facts.get("destination_country"),
        facts.get("purpose"),
        item.topic,
        item.partition,
        item.offset,
        event.model_dump_json(),
    )


_FACTS = ("asset_id", "model_name", "model_version", "classification", "purpose")


@functools.cache
def _fact_fields(model: type[Event]) -> tuple[str, ...]:
    """The typed facts a kind of event has (looked up once per kind: a missing attribute on a
    pydantic model costs an exception, which cost the sink a fifth of its time)."""
    return tuple(key for key in _FACTS if key in model.model_fields)


def _typed_facts(event: Event) -> dict[str, str | None]:
    facts: dict[str, str | None] = dict.fromkeys(_FACTS)
    for key in _fact_fields(type(event)):
        value = getattr(event, key)
        facts[key] = str(value) if value is not None else None
    if isinstance(event, DataMovement):
        facts["source_country"] = event.source.country
        facts["destination_country"] = event.destination.country
    elif isinstance(event, AssetDeclared):
        facts["source_country"] = event.location.country
    return facts


def rows_for(items: list[Located]) -> Rows:
    """Every table's rows for a batch (the audit log included)."""
    rows = Rows()
    for item in items:
        rows.add("audit_log", audit_row(item))
        for table, row in derived_rows(item.event):
            rows.add(table, row)
    return rows


def derived_rows(event: Event) -> Iterator[tuple[str, tuple[Any, ...]]]:
    env = event.envelope
    when, eid = env.event_time, env.event_id
    if isinstance(event, AssetDeclared):
        attrs = {
            "classification": str(event.classification),
            "owner": event.owner,
            "residency": ",".join(event.residency),
            "origin_jurisdictions": ",".join(event.origin_jurisdictions),
        }
        yield (
            "lineage_nodes",
            (
                event.asset_id,
                str(event.asset_kind),
                event.name,
                event.location.country,
                attrs,
                when,
                eid,
            ),
        )
        for parent in event.derived_from:
            yield "lineage_edges", (parent, event.asset_id, "derived_from", when, None, eid, {})
    elif isinstance(event, DataMovement):
        yield from _movement(event)
    elif isinstance(event, TrainingRun):
        yield from _training(event)
    elif isinstance(event, ModelDeployed):
        yield from _deployment(event)
    elif isinstance(event, Prediction | PredictionBatch):
        yield from (("predictions", row) for row in prediction_rows(event))
    else:
        yield from _alert(event)


def _movement(event: DataMovement) -> Iterator[tuple[str, tuple[Any, ...]]]:
    if event.target_asset_id is None:
        return
    env = event.envelope
    attrs = {
        "operation": str(event.operation),
        "source_country": event.source.country,
        "destination_country": event.destination.country,
        "purpose": event.purpose,
        "mechanism": str(event.mechanism.kind) if event.mechanism else "none",
    }
    yield (
        "lineage_nodes",
        (
            event.target_asset_id,
            "dataset",
            event.target_asset_id,
            event.destination.country,
            {},
            env.event_time,
            env.event_id,
        ),
    )
    yield (
        "lineage_edges",
        (
            event.asset_id,
            event.target_asset_id,
            "moved_to",
            env.event_time,
            None,
            env.event_id,
            attrs,
        ),
    )


def _training(event: TrainingRun) -> Iterator[tuple[str, tuple[Any, ...]]]:
    if event.status != RunStatus.COMPLETED:
        return
    env = event.envelope
    run = f"run:{event.run_id}"
    yield (
        "lineage_nodes",
        (
            run,
            "run",
            event.run_id,
            event.location.country,
            {"code_version": event.code_version},
            env.event_time,
            env.event_id,
        ),
    )
    for source in event.inputs:
        yield (
            "lineage_edges",
            (
                source,
                run,
                "trained_on",
                env.event_time,
                None,
                env.event_id,
                {"country": event.location.country},
            ),
        )
    if event.model_version is not None:
        node = model_node(event.model_name, event.model_version)
        yield (
            "lineage_nodes",
            (
                node,
                "model_version",
                event.model_name,
                event.location.country,
                {"run_id": event.run_id},
                env.event_time,
                env.event_id,
            ),
        )
        yield "lineage_edges", (run, node, "produced", env.event_time, None, env.event_id, {})


def _deployment(event: ModelDeployed) -> Iterator[tuple[str, tuple[Any, ...]]]:
    env = event.envelope
    node = f"deployment:{event.deployment_id}"
    retired = event.status == "retired"
    yield (
        "lineage_nodes",
        (
            node,
            "deployment",
            event.deployment_id,
            event.location.country,
            {"region": event.location.region or ""},
            env.event_time,
            env.event_id,
        ),
    )
    yield (
        "lineage_edges",
        (
            model_node(event.model_name, event.model_version),
            node,
            "deployed_to",
            env.event_time,
            env.event_time if retired else None,
            env.event_id,
            {"country": event.location.country, "status": str(event.status)},
        ),
    )


def prediction_rows(event: Prediction | PredictionBatch) -> Iterator[tuple[Any, ...]]:
    env, loc = event.envelope, event.location
    if isinstance(event, Prediction):
        yield (
            env.event_id,
            0,
            event.prediction_id,
            env.event_time,
            event.model_name,
            event.model_version,
            loc.country,
            loc.region,
            event.subject_jurisdiction,
            event.score,
            event.label,
            1.0,
        )
        return
    for i in range(event.count):
        yield (
            env.event_id,
            i,
            f"{event.batch_id}:{i}",
            env.event_time,
            event.model_name,
            event.model_version,
            loc.country,
            loc.region,
            event.subject_jurisdictions[i] if event.subject_jurisdictions else None,
            event.scores[i] if event.scores else None,
            event.labels[i] if event.labels else None,
            event.sample_rate,
        )


def _alert(event: Event) -> Iterator[tuple[str, tuple[Any, ...]]]:
    env = event.envelope
    if isinstance(event, PolicyViolation):
        yield (
            "violations",
            (
                event.violation_id,
                env.event_id,
                env.event_time,
                str(event.decision),
                str(event.severity),
                event.rule_id,
                event.rule_version,
                event.policy_version,
                event.subject_event_id,
                event.message,
                list(event.evidence_event_ids),
                event.facts,
            ),
        )
    elif isinstance(event, DriftAlert):
        yield (
            "drift_alerts",
            (
                event.alert_id,
                env.event_id,
                env.event_time,
                str(event.state),
                str(event.severity),
                event.model_name,
                event.model_version,
                event.feature,
                event.statistic,
                event.value,
                event.threshold,
                event.window_start,
                event.window_end,
                event.training_run_id,
            ),
        )
    elif isinstance(event, IntegrityAlert):
        yield (
            "integrity_alerts",
            (
                event.alert_id,
                env.event_id,
                env.event_time,
                str(event.kind),
                str(event.severity),
                event.stream,
                event.expected_sequence,
                event.observed_sequence,
                event.subject_event_id,
                event.detail,
            ),
        )


COLUMNS = {
    "audit_log": AUDIT_COLUMNS,
    "lineage_nodes": NODE_COLUMNS,
    "lineage_edges": EDGE_COLUMNS,
    "predictions": PREDICTION_COLUMNS,
    "violations": VIOLATION_COLUMNS,
    "drift_alerts": DRIFT_COLUMNS,
    "integrity_alerts": INTEGRITY_COLUMNS,
}
