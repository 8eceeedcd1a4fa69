"""OpenLineage → audit events: what each kind of OpenLineage event becomes (pure)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from auditline.events import AssetDeclared, DataMovement, OpenLineageEvent, TrainingRun
from auditline.openlineage.locations import load_inventory
from auditline.openlineage.mapping import (
    MAX_FLOWS,
    MappingConfig,
    TrainingPattern,
    asset_id,
    convert,
)
from auditline.openlineage.validation import check

RUN_ID = "0190d2a2-3c4e-7b8f-9a1b-2c3d4e5f6a7b"
PARENT_ID = "0190d2a2-0000-7000-8000-000000000001"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET = "https://auditline.dev/spec/facets/1-0-0/AuditlineDatasetFacet.json"


def dataset(namespace: str, name: str, **facets: Any) -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "facets": facets}


def auditline_facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACET, **fields}


def run_event(event_type: str = "COMPLETE", **change: Any) -> dict[str, Any]:
    event = {
        "eventType": event_type,
        "eventTime": "2026-11-30T10:00:00.000Z",
        "run": {
            "runId": RUN_ID,
            "facets": {
                "parent": {
                    "_producer": PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json",
                    "run": {"runId": PARENT_ID},
                    "job": {"namespace": "airflow", "name": "etl_dag"},
                }
            },
        },
        "job": {"namespace": "spark-prod", "name": "etl_dag.copy_customers"},
        "inputs": [
            dataset(
                "s3://eu-raw", "customers",
                auditline=auditline_facet(
                    classification="personal", residency=["EEA"], subject_jurisdictions=["DE"],
                    location={"country": "DE"},
                ),
            )
        ],
        "outputs": [
            dataset(
                "s3://us-reports", "daily",
                auditline=auditline_facet(location={"country": "US"}),
                symlinks={"identifiers": [
                    {"namespace": "hive://metastore", "name": "reports.daily", "type": "TABLE"}
                ]},
                columnLineage={"fields": {"customer_id": {"inputFields": [{
                    "namespace": "s3://eu-raw", "name": "customers", "field": "id",
                    "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
                }]}}},
            )
        ],
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
    }  # fmt: skip
    event.update(change)
    return event


def converted(event: dict[str, Any], config: MappingConfig | None = None) -> Any:
    raw = json.dumps(event).encode()
    return convert(check(raw), raw, config or MappingConfig())


def kinds(result: Any) -> list[str]:
    return [model.__name__ for model, _ in result.events]


def test_a_completed_run_declares_its_datasets_and_moves_each_input_to_each_output() -> None:
    result = converted(run_event())
    assert kinds(result) == ["OpenLineageEvent", "AssetDeclared", "DataMovement"]  # the output's
    # facet only places it: no declaration
    assert result.trace_id == RUN_ID
    move = dict(result.events[-1][1])
    assert (move["asset_id"], move["target_asset_id"]) == ("s3://eu-raw/customers",
                                                          "s3://us-reports/daily")  # fmt: skip
    assert (move["source"]["country"], move["destination"]["country"]) == ("DE", "US")
    assert move["operation"] == "derive" and move["classification"] == "personal"
    assert move["exporter"]["entity_id"] == "spark-prod" and move["purpose"] == "unspecified"
    declared = dict(result.events[1][1])
    assert declared["residency"] == ["EEA"] or tuple(declared["residency"]) == ("EEA",)


def test_the_evidence_keeps_run_parent_symlinks_column_lineage_and_the_digest() -> None:
    event = run_event()
    raw = json.dumps(event).encode()
    result = convert(check(raw), raw, MappingConfig())
    model, evidence = result.events[0]
    assert model is OpenLineageEvent
    assert evidence["run_id"] == RUN_ID and evidence["parent_run_id"] == PARENT_ID
    assert evidence["parent_job"] == "airflow/etl_dag"
    assert evidence["job"] == "spark-prod/etl_dag.copy_customers"
    assert evidence["digest"] == hashlib.sha256(raw).hexdigest()
    assert json.loads(evidence["original"]) == event
    assert evidence["aliases"] == [{"asset_id": "s3://us-reports/daily",
                                    "alias": "hive://metastore/reports.daily",
                                    "alias_type": "TABLE"}]  # fmt: skip
    [edge] = evidence["column_lineage"]
    assert edge == {
        "output_asset": "s3://us-reports/daily", "output_field": "customer_id",
        "input_asset": "s3://eu-raw/customers", "input_field": "id",
        "transformation": "DIRECT/IDENTITY",
    }  # fmt: skip


def test_a_start_announces_and_moves_nothing() -> None:
    assert "DataMovement" not in kinds(converted(run_event("START")))


@pytest.mark.parametrize("state", ["FAIL", "ABORT"])
def test_data_may_have_moved_in_a_failed_or_aborted_run(state: str) -> None:
    assert kinds(converted(run_event(state)))[-1] == "DataMovement"


def test_a_batch_job_moves_at_its_end_a_streaming_job_while_it_runs() -> None:
    assert "DataMovement" not in kinds(converted(run_event("RUNNING")))
    streaming = {"namespace": "flink", "name": "events", "facets": {"jobType": {
        "processingType": "STREAMING", "integration": "FLINK", "jobType": "JOB"}}}  # fmt: skip
    assert kinds(converted(run_event("RUNNING", job=streaming)))[-1] == "DataMovement"


def test_a_facet_that_only_places_or_names_an_owner_declares_nothing() -> None:
    event = run_event(inputs=[dataset("s3://x", "a", auditline=auditline_facet(owner="crm"))])
    assert "AssetDeclared" not in kinds(converted(event))[:2]


def test_a_dataset_of_unknown_place_is_not_declared_and_the_note_says_why() -> None:
    facet = auditline_facet(classification="personal")
    result = converted(run_event(inputs=[dataset("s3://nowhere", "a", auditline=facet)]))
    assert kinds(result) == ["OpenLineageEvent", "DataMovement"]
    assert any("s3://nowhere/a" in note and "unknown" in note for note in result.notes)


def test_flows_and_lists_are_bounded_with_a_note() -> None:
    many = [dataset("s3://in", f"t{i}") for i in range(120)]
    outs = [dataset("s3://out", f"t{i}") for i in range(120)]
    result = converted(run_event(inputs=many, outputs=outs))
    assert kinds(result).count("DataMovement") == MAX_FLOWS
    assert any("not recorded as movements" in note for note in result.notes)


def test_a_training_run_is_where_its_job_runs() -> None:
    job = {"namespace": "ml", "name": "train", "facets": {"auditline": {
        "training": {"model_name": "churn"}, "location": {"provider": "gcp",
                                                            "region": "us-central1"}}}}  # fmt: skip
    run = dict(converted(run_event(job=job)).events[-1][1])
    assert run["location"]["country"] == "US"


def test_a_dataset_without_the_facet_declares_nothing_and_an_unknown_place_is_zz() -> None:
    event = run_event(
        inputs=[dataset("s3://somewhere", "raw")],
        outputs=[dataset("s3://elsewhere", "out")],
    )
    result = converted(event)
    assert kinds(result) == ["OpenLineageEvent", "DataMovement"]
    move = dict(result.events[-1][1])
    assert move["source"] == {"country": "ZZ"} and move["destination"] == {"country": "ZZ"}
    assert set(result.unplaced) == {"s3://somewhere/raw", "s3://elsewhere/out"}
    assert set(result.events[0][1]["unplaced"]) == set(result.unplaced)


def test_an_inventory_places_datasets_by_pattern(tmp_path: Any) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "rules:\n"
        "  - pattern: 's3://eu-data-*'\n    provider: aws\n    region: eu-central-1\n"
        "  - pattern: 's3://us-data-*'\n    provider: aws\n    region: us-east-1\n"
    )
    config = MappingConfig(inventory=load_inventory(path))
    event = run_event(
        inputs=[dataset("s3://eu-data-lake", "raw")],
        outputs=[dataset("s3://us-data-mart", "out")],
    )
    move = dict(converted(event, config).events[-1][1])
    assert move["source"]["country"] == "DE" and move["destination"]["country"] == "US"
    assert move["source"]["region"] == "eu-central-1"


def test_a_training_job_is_a_training_run_not_a_movement() -> None:
    config = MappingConfig(training=(TrainingPattern("spark-prod/train_*", "churn"),))
    event = run_event(job={"namespace": "spark-prod", "name": "train_churn"})
    result = converted(event, config)
    assert kinds(result)[-1] == "TrainingRun" and "DataMovement" not in kinds(result)
    run = dict(result.events[-1][1])
    assert run["model_name"] == "churn" and run["status"] == "completed"
    assert run["inputs"] == ["s3://eu-raw/customers"] and run["run_id"] == RUN_ID
    started = dict(converted(run_event("START", job=event["job"]), config).events[-1][1])
    assert started["status"] == "started"


def test_a_dataset_event_records_and_declares_its_dataset() -> None:
    event = {
        "eventTime": "2026-11-30T10:00:00Z", "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset("s3://eu-raw", "customers",
                           auditline=auditline_facet(classification="personal",
                                                     location={"country": "DE"})),
    }  # fmt: skip
    result = converted(event)
    assert kinds(result) == ["OpenLineageEvent", "AssetDeclared"]
    assert result.events[0][1]["event_type"] == "DATASET" and result.trace_id is None


def test_an_oversized_event_keeps_its_digest_not_its_text() -> None:
    result = converted(run_event(), MappingConfig(original_limit=100))
    assert result.events[0][1]["original"] is None
    assert any("digest kept" in note for note in result.notes)


def test_every_converted_body_is_a_valid_audit_event() -> None:
    """What the ingestor emits validates against the event models (the producer checks it)."""
    from auditline.events import Envelope, Location, ProducerInfo

    placeholder = Envelope.model_construct(
        producer=ProducerInfo.model_construct(location=Location.model_construct(country="ZZ"))
    )
    for state in ("START", "RUNNING", "COMPLETE", "FAIL"):
        for model, body in converted(run_event(state)).events:
            assert model in (OpenLineageEvent, AssetDeclared, DataMovement, TrainingRun)
            model.model_validate({"envelope": placeholder, **body})


def test_asset_ids_join_namespace_and_name_with_one_slash() -> None:
    assert asset_id("s3://bucket/", "/path/file") == "s3://bucket/path/file"
    assert asset_id("bigquery", "proj.ds.table") == "bigquery/proj.ds.table"
