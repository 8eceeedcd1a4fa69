"""Event → row mapping (pure): every kind of event, generated from the Avro contracts."""

from __future__ import annotations

from typing import Any

from auditline.sinks.rows import AUDIT_COLUMNS, COLUMNS, Located, audit_row, rows_for
from hypothesis import given, settings
from hypothesis import strategies as st

from auditline.events import (
    AssetDeclared,
    DataMovement,
    DataQualityAlert,
    DriftAlert,
    Event,
    IntegrityAlert,
    Outcome,
    PerformanceAlert,
    PolicyViolation,
    Prediction,
    PredictionBatch,
)
from tests.strategies import any_event

FACTS = ("asset_id", "model_name", "model_version", "classification", "purpose")


def expected_facts(event: Event) -> dict[str, str | None]:
    """The typed facts, written down from docs/store.md: a body field of the column's name, the
    countries of a movement's ends, an asset's location."""
    facts: dict[str, Any] = {key: getattr(event, key, None) for key in FACTS}
    facts["source_country"] = facts["destination_country"] = None
    if isinstance(event, DataMovement):
        facts["source_country"] = event.source.country
        facts["destination_country"] = event.destination.country
    if isinstance(event, AssetDeclared):
        facts["source_country"] = event.location.country
    return {key: None if value is None else str(value) for key, value in facts.items()}


@settings(max_examples=300, deadline=None)
@given(any_event(), st.text(min_size=1, max_size=20), st.integers(0, 99), st.integers(0, 2**40))
def test_the_audit_row_holds_the_envelope_the_facts_and_the_event_as_json(
    event: Event, topic: str, partition: int, offset: int
) -> None:
    row = dict(zip(AUDIT_COLUMNS, audit_row(Located(event, topic, partition, offset)), strict=True))
    env = event.envelope
    assert row["payload"] == event.model_dump_json().encode()  # what verify and queries read
    assert type(event).model_validate_json(row["payload"]) == event
    assert (row["event_id"], row["event_time"], row["kind"]) == (
        env.event_id, env.event_time, type(event).__name__,
    )  # fmt: skip
    assert (row["stream"], row["sequence"], row["prev_hash"], row["hash"]) == (
        env.stream, env.sequence, env.prev_hash, env.hash,
    )  # fmt: skip
    signature = env.signature
    assert row["signature_key_id"] == (signature.key_id if signature else None)
    assert row["signature"] == (signature.value.hex() if signature else None)
    assert (row["producer_service"], row["producer_country"], row["schema_version"]) == (
        env.producer.service, env.producer.location.country, env.schema_version,
    )  # fmt: skip
    assert {key: row[key] for key in expected_facts(event)} == expected_facts(event)
    assert (row["topic"], row["partition"], row["offset"]) == (topic, partition, offset)


ONE_ROW = {PolicyViolation: "violations", DriftAlert: "drift_alerts",
           DataQualityAlert: "quality_alerts", IntegrityAlert: "integrity_alerts",
           PerformanceAlert: "performance_alerts", Outcome: "outcomes",
           Prediction: "predictions"}  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(any_event(), max_size=12))
def test_a_batch_has_one_audit_row_per_event_and_each_kind_its_derived_rows(
    events: list[Event],
) -> None:
    tables = rows_for([Located(e, "t", 0, i) for i, e in enumerate(events)]).tables
    assert [row[0] for row in tables.get("audit_log", [])] == [e.envelope.event_id for e in events]
    for table, rows in tables.items():
        assert rows and all(len(row) == len(COLUMNS[table]) for row in rows)
    for kind, table in ONE_ROW.items():  # one row per event of the kind, in batch order
        of_kind = [e.envelope.event_id for e in events if type(e) is kind]
        column = COLUMNS[table].index("event_id")
        in_table = [row[column] for row in tables.get(table, [])]
        assert [i for i in in_table if i in set(of_kind)] == of_kind
    batches = [e for e in events if isinstance(e, PredictionBatch)]
    rows = tables.get("predictions", [])
    assert len(rows) == sum(b.count for b in batches) + sum(type(e) is Prediction for e in events)


def test_an_empty_batch_has_no_rows() -> None:
    assert rows_for([]).tables == {}
