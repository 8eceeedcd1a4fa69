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
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from types import UnionType
from typing import Any, NamedTuple, Union, get_args, get_origin

from auditline.events import (
    AssetDeclared,
    DataMovement,
    DataQualityAlert,
    DriftAlert,
    Event,
    IntegrityAlert,
    ModelDeployed,
    OpenLineageEvent,
    Outcome,
    PerformanceAlert,
    PolicyViolation,
    Prediction,
    PredictionBatch,
    RunStatus,
    TrainingRun,
)

_FACTS = (
    "asset_id",
    "model_name",
    "model_version",
    "classification",
    "source_country",
    "destination_country",
    "purpose",
)
"""The typed body facts of the audit log, in column order."""
_ENVELOPE_COLUMNS = {
    "event_id": "event_id",
    "event_time": "event_time",
    "stream": "stream",
    "sequence": "sequence",
    "prev_hash": "prev_hash",
    "hash": "hash",
    "producer_service": "producer.service",
    "producer_instance": "producer.instance",
    "producer_country": "producer.location.country",
    "tenant": "tenant",
    "trace_id": "trace_id",
    "schema_version": "schema_version",
}
"""The audit log's envelope columns and their attribute paths in the envelope."""
AUDIT_COLUMNS = (
    *_ENVELOPE_COLUMNS,
    "kind",
    "signature_key_id",
    "signature",
    *_FACTS,
    "topic",
    "partition",
    "offset",
    "payload",
)
"""The audit log's columns in the order ``audit_row`` builds them: the envelope's first (read in
one ``attrgetter`` call), then the kind and signature, the typed facts, the Kafka coordinates
and the payload. ``AUDIT_ID``, ``AUDIT_TIME`` and ``AUDIT_KIND`` are the indexes of
``event_id``, ``event_time`` and ``kind`` (the writer's exactly-once lookup reads them)."""
AUDIT_ID, AUDIT_TIME, AUDIT_KIND = (
    AUDIT_COLUMNS.index(c) for c in ("event_id", "event_time", "kind")
)
NODE_COLUMNS = ("node_id", "node_type", "name", "country", "attributes", "valid_from", "event_id")
EDGE_COLUMNS = ("src", "dst", "edge_type", "valid_from", "valid_to", "event_id", "attributes")
PREDICTION_COLUMNS = (
    "event_id",
    "prediction_id",
    "event_time",
    "model_name",
    "model_version",
    "country",
    "region",
    "subject_jurisdiction",
    "score",
    "label",
    "row",
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
QUALITY_COLUMNS = (
    "alert_id",
    "event_id",
    "event_time",
    "state",
    "severity",
    "model_name",
    "model_version",
    "feature",
    "check",
    "rate",
    "reference_rate",
    "threshold",
    "affected",
    "window_count",
    "window_start",
    "window_end",
    "training_run_id",
    "statistics",
)
OUTCOME_COLUMNS = (
    "event_id",
    "event_time",
    "model_name",
    "model_version",
    "prediction_id",
    "batch_id",
    "row",
    "label",
    "value",
)
PERFORMANCE_COLUMNS = (
    "alert_id",
    "event_id",
    "event_time",
    "state",
    "severity",
    "model_name",
    "model_version",
    "metric",
    "value",
    "baseline",
    "threshold",
    "window_start",
    "window_end",
    "outcomes",
    "coverage",
    "label_delay_p50_s",
    "training_run_id",
    "statistics",
)
COLUMN_LINEAGE_COLUMNS = (
    "output_asset",
    "output_field",
    "input_asset",
    "input_field",
    "transformation",
    "valid_from",
    "event_id",
    "run_id",
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


class Located(NamedTuple):
    """A decoded event with where it was read from (a named tuple: one is built per event)."""

    event: Event
    topic: str
    partition: int
    offset: int


Item = Located
"""A decoded event as the writer takes it."""


@dataclass
class Rows:
    """Rows per table for a batch of events."""

    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.tables.setdefault(table, []).append(row)


Derived = Iterable[tuple[str, tuple[Any, ...]]]
"""An event's rows in the tables other than the audit log: (table, row) pairs."""


def model_node(name: str, version: str) -> str:
    return f"model:{name}:{version}"


def kind_of(item: Item) -> type[Event]:
    """The model of the item's event (its kind)."""
    return type(item.event)


def audit_row(item: Item) -> tuple[Any, ...]:
    """The audit-log row (``AUDIT_COLUMNS``); ``payload`` is the event's JSON
    (``model_dump_json``) as UTF-8 bytes, the bytes the column stores, so that it is neither
    decoded here nor encoded again on insert."""
    event, topic, partition, offset = item
    return _audit_builder(type(event))(event, topic, partition, offset)


AuditBuilder = Callable[[Any, str, int, int], tuple[Any, ...]]
"""``build(event, topic, partition, offset)``: the audit-log row of an event of one kind."""
_ENVELOPE = attrgetter(*_ENVELOPE_COLUMNS.values())
"""The envelope's columns, read from the envelope in C in one call (``AUDIT_COLUMNS`` order)."""


@functools.cache
def _audit_builder(model: type[Event]) -> AuditBuilder:
    """The audit-log row builder of a kind, its name, facts and serializer resolved once: per
    event, a few C calls (attribute getters, tuple concatenation, pydantic-core's JSON)."""
    facts, to_json = _fact_reader(model), model.__pydantic_serializer__.to_json
    name = model.__name__
    unsigned = (name, None, None)
    envelope = _ENVELOPE

    def build(event: Any, topic: str, partition: int, offset: int) -> tuple[Any, ...]:
        env = event.envelope
        signature = env.signature
        signed = unsigned if signature is None else (
            name, signature.key_id, signature.value.hex(),
        )  # fmt: skip
        return envelope(env) + signed + facts(event) + (topic, partition, offset, to_json(event))

    return build


_BODY_FACTS = ("asset_id", "model_name", "model_version", "classification", "purpose")
_COUNTRY_FACTS: dict[type[Event], dict[str, str]] = {
    DataMovement: {
        "source_country": "source.country",
        "destination_country": "destination.country",
    },
    AssetDeclared: {"source_country": "location.country"},
}
_NO_FACTS = (None,) * len(_FACTS)


@functools.cache
def _fact_reader(model: type[Event]) -> Callable[[Any], tuple[str | None, ...]]:
    """The typed facts of a kind of event (``_FACTS`` order), its attribute paths resolved once
    per kind (a missing attribute on a pydantic model costs an exception, which once cost the
    sink a fifth of its time): a body field of the fact's name, or a location's country; as
    ``str`` (an enum's value), None where the kind has no such fact or the value is None. Where
    every fact of the kind is a string already, one ``attrgetter`` and one ``itemgetter`` call."""
    paths = {key: key for key in _BODY_FACTS if key in model.model_fields}
    paths.update(next((v for k, v in _COUNTRY_FACTS.items() if issubclass(model, k)), {}))
    present = [key for key in _FACTS if key in paths]
    if not present:
        return lambda event: _NO_FACTS
    read = attrgetter(*(paths[key] for key in present))
    values = read if len(present) > 1 else lambda event: (read(event),)
    # each fact column: its value's index, or that of the None appended after the values
    arrange = itemgetter(*(present.index(k) if k in present else len(present) for k in _FACTS))
    if all(_plain_str(model, paths[key]) for key in present):
        return lambda event: arrange((*values(event), None))

    def read_as_str(event: Any) -> tuple[str | None, ...]:
        found = [None if value is None else str(value) for value in values(event)]
        return arrange((*found, None))  # type: ignore[no-any-return]

    return read_as_str


def _plain_str(model: type[Any], path: str) -> bool:
    """Whether the field at ``path`` (dotted, through nested models) holds ``str`` or None."""
    annotation: Any = model
    for name in path.split("."):
        annotation = annotation.model_fields[name].annotation
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        if get_origin(annotation) in (Union, UnionType) and len(present) == 1:
            annotation = present[0]
    return annotation is str


def rows_for(items: Sequence[Item]) -> Rows:
    """Every table's rows for a batch (the audit log included), in one pass over the events: per
    event its audit row, then its derived rows; each kind's builders looked up once a batch."""
    audit: list[tuple[Any, ...]] = []
    tables: defaultdict[str, list[tuple[Any, ...]]] = defaultdict(list)
    if items:
        tables["audit_log"] = audit
    append, kinds = audit.append, dict[type[Event], tuple[AuditBuilder, Callable[[Any], Derived]]]()
    for event, topic, partition, offset in items:
        kind = type(event)
        found = kinds.get(kind)
        if found is None:
            found = kinds[kind] = (_audit_builder(kind), _deriver(kind))
        build, derive = found
        append(build(event, topic, partition, offset))
        for table, row in derive(event):
            tables[table].append(row)
    return Rows(dict(tables))


def derived_rows(event: Event) -> Derived:
    """The rows an event adds to the tables other than the audit log, as (table, row)."""
    return _deriver(type(event))(event)


@functools.cache
def _deriver(model: type[Event]) -> Callable[[Any], Derived]:
    """The derived rows' function of a kind of event, looked up once per kind."""
    return next((derive for kind, derive in _DERIVERS.items() if issubclass(model, kind)), _none)


def _none(event: Event) -> Derived:
    return ()


def _asset(event: AssetDeclared) -> Iterator[tuple[str, tuple[Any, ...]]]:
    env = event.envelope
    when, eid = env.event_time, env.event_id
    attrs = {
        "classification": str(event.classification),
        "owner": event.owner,
        "residency": ",".join(event.residency),
        "origin_jurisdictions": ",".join(event.origin_jurisdictions),
    }
    country = event.location.country
    yield (
        "lineage_nodes",
        (event.asset_id, str(event.asset_kind), event.name, country, attrs, when, eid),
    )
    for parent in event.derived_from:
        yield "lineage_edges", (parent, event.asset_id, "derived_from", when, None, eid, {})


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


def _openlineage(event: OpenLineageEvent) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """An OpenLineage run as a node between its datasets (``read_by``, ``wrote``), under its
    parent run (``parent_of``); symlinks as ``alias_of`` edges; column lineage rows."""
    env = event.envelope
    when, eid = env.event_time, env.event_id
    if event.run_id is not None:
        run = f"run:{event.run_id}"
        attrs = {"job": event.job or "", "event_type": event.event_type, "source": "openlineage"}
        yield "lineage_nodes", (run, "run", event.job or event.run_id, None, attrs, when, eid)
        for source in event.inputs:
            yield "lineage_edges", (source, run, "read_by", when, None, eid, {})
        for target in event.outputs:
            yield "lineage_edges", (run, target, "wrote", when, None, eid, {})
        if event.parent_run_id is not None:
            parent = f"run:{event.parent_run_id}"
            yield "lineage_edges", (parent, run, "parent_of", when, None, eid, {})
    for alias in event.aliases:
        attrs = {"type": alias.alias_type} if alias.alias_type else {}
        yield "lineage_edges", (alias.alias, alias.asset_id, "alias_of", when, None, eid, attrs)
    for edge in event.column_lineage:
        yield (
            "column_lineage",
            (
                edge.output_asset, edge.output_field, edge.input_asset, edge.input_field,
                edge.transformation, when, eid, event.run_id,
            ),
        )  # fmt: skip


def prediction_rows(event: Prediction | PredictionBatch) -> Iterator[tuple[Any, ...]]:
    """One row per prediction (a batch exploded)."""
    if isinstance(event, Prediction):
        yield _prediction_row(event)
    else:
        yield from _batch_rows(event)


def _prediction(event: Prediction) -> Derived:
    return (("predictions", _prediction_row(event)),)


_PREDICTION = attrgetter(
    "envelope.event_id",
    "prediction_id",
    "envelope.event_time",
    "model_name",
    "model_version",
    "location.country",
    "location.region",
    "subject_jurisdiction",
    "score",
    "label",
)
"""A single prediction's columns up to ``row`` (``PREDICTION_COLUMNS`` order), read in C."""
_SINGLE = (0, 1.0)
"""A single prediction's ``row`` and ``sample_rate``."""


def _prediction_row(event: Prediction) -> tuple[Any, ...]:
    return _PREDICTION(event) + _SINGLE


def _prediction_batch(event: PredictionBatch) -> Derived:
    return (("predictions", row) for row in _batch_rows(event))


def _batch_rows(event: PredictionBatch) -> Iterator[tuple[Any, ...]]:
    env, loc = event.envelope, event.location
    for i in range(event.count):
        yield (
            env.event_id,
            f"{event.batch_id}:{i}",
            env.event_time,
            event.model_name,
            event.model_version,
            loc.country,
            loc.region,
            event.subject_jurisdictions[i] if event.subject_jurisdictions else None,
            event.scores[i] if event.scores else None,
            event.labels[i] if event.labels else None,
            i,
            event.sample_rate,
        )


def outcome_prediction_id(event: Outcome) -> str:
    """The id of the outcome's prediction as the predictions table names it (a batch row's is
    ``<batch_id>:<row>``)."""
    if event.prediction_id is not None:
        return event.prediction_id
    return f"{event.batch_id}:{event.row}"


def _outcome(event: Outcome) -> Derived:
    env = event.envelope
    row = (
        env.event_id, env.event_time, event.model_name, event.model_version,
        outcome_prediction_id(event), event.batch_id, event.row, event.label, event.value,
    )  # fmt: skip
    return (("outcomes", row),)


def _violation(event: PolicyViolation) -> Derived:
    env = event.envelope
    row = (
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
    )
    return (("violations", row),)


def _drift(event: DriftAlert) -> Derived:
    env = event.envelope
    row = (
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
    )
    return (("drift_alerts", row),)


def _quality(event: DataQualityAlert) -> Derived:
    env = event.envelope
    row = (
        event.alert_id,
        env.event_id,
        env.event_time,
        str(event.state),
        str(event.severity),
        event.model_name,
        event.model_version,
        event.feature,
        event.check,
        event.rate,
        event.reference_rate,
        event.threshold,
        event.affected,
        event.window_count,
        event.window_start,
        event.window_end,
        event.training_run_id,
        event.statistics,
    )
    return (("quality_alerts", row),)


def _performance(event: PerformanceAlert) -> Derived:
    env = event.envelope
    row = (
        event.alert_id, env.event_id, env.event_time, str(event.state), str(event.severity),
        event.model_name, event.model_version, event.metric, event.value, event.baseline,
        event.threshold, event.window_start, event.window_end, event.outcomes, event.coverage,
        event.label_delay_p50_s, event.training_run_id, event.statistics,
    )  # fmt: skip
    return (("performance_alerts", row),)


def _integrity(event: IntegrityAlert) -> Derived:
    env = event.envelope
    row = (
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
    )
    return (("integrity_alerts", row),)


_DERIVERS: dict[type[Event], Callable[[Any], Derived]] = {
    AssetDeclared: _asset,
    DataMovement: _movement,
    TrainingRun: _training,
    ModelDeployed: _deployment,
    Prediction: _prediction,
    PredictionBatch: _prediction_batch,
    Outcome: _outcome,
    PolicyViolation: _violation,
    DriftAlert: _drift,
    DataQualityAlert: _quality,
    PerformanceAlert: _performance,
    IntegrityAlert: _integrity,
    OpenLineageEvent: _openlineage,
}
"""Kinds without derived rows (StreamCheckpoint) are not here."""


COLUMNS = {
    "audit_log": AUDIT_COLUMNS,
    "lineage_nodes": NODE_COLUMNS,
    "lineage_edges": EDGE_COLUMNS,
    "predictions": PREDICTION_COLUMNS,
    "violations": VIOLATION_COLUMNS,
    "drift_alerts": DRIFT_COLUMNS,
    "quality_alerts": QUALITY_COLUMNS,
    "outcomes": OUTCOME_COLUMNS,
    "performance_alerts": PERFORMANCE_COLUMNS,
    "integrity_alerts": INTEGRITY_COLUMNS,
    "column_lineage": COLUMN_LINEAGE_COLUMNS,
}
