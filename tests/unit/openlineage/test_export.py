"""Audit events → OpenLineage events (pure): every kind, each event valid OpenLineage with the
auditline facets fitting their own schemas, read back by the ingestion as what was exported."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Any
from uuid import UUID, uuid4

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openlineage.client.serde import Serde

from auditline.demo import ACME_EU, ACME_US, FRANKFURT, VIRGINIA, demo_events
from auditline.errors import EmitError, UnavailableError
from auditline.events import (
    ZERO_HASH,
    AssetDeclared,
    DataMovement,
    Envelope,
    Event,
    ModelDeployed,
    Party,
    Prediction,
    ProducerInfo,
    TrainingRun,
)
from auditline.integrity.chain import seal
from auditline.openlineage.cli import SERVICE
from auditline.openlineage.export import (
    DATASET_NAMESPACE,
    EXPORTED,
    MODEL_NAMESPACE,
    PRODUCER,
    dataset_name,
    ingested,
    to_openlineage,
    training_run_id,
)
from auditline.openlineage.mapping import MappingConfig, asset_id, convert
from auditline.openlineage.validation import check

T0 = datetime(2026, 4, 1, 9, 30, 15, 250_000, tzinfo=UTC)
SCHEMAS = files("auditline.openlineage") / "schemas"
EU_RAW = "s3://eu-data/raw/customers"
US_COPY = "s3://us-data/copies/customers"


def sealed(model: type[Event], minute: int = 0, service: str = "platform", **body: Any) -> Event:
    envelope = Envelope(
        event_id=uuid4(), event_time=T0 + timedelta(minutes=minute), stream=f"{service}/p1",
        producer=ProducerInfo(service=service, instance="p1", location=FRANKFURT),
        sequence=minute, prev_hash=ZERO_HASH, hash=ZERO_HASH,
    )  # fmt: skip
    return seal(model(envelope=envelope, **body))


def declared(**change: Any) -> Event:
    body = {
        "asset_id": EU_RAW, "asset_kind": "dataset", "name": "customers", "owner": "crm-team",
        "classification": "personal", "location": FRANKFURT, "origin_jurisdictions": ("EEA",),
        "subject_jurisdictions": ("DE", "FR"), "subject_citizenships": ("DE",),
        "residency": ("EEA",), "collection_purposes": ("service",),
    }  # fmt: skip
    return sealed(AssetDeclared, **{**body, **change})


def moved(**change: Any) -> Event:
    dpf = {"scheme": "dpf", "status": "active", "as_of": date(2026, 1, 1)}
    importer = Party.model_validate({**ACME_US.model_dump(), "certifications": [dpf]})
    body = {
        "asset_id": EU_RAW, "target_asset_id": US_COPY, "operation": "copy",
        "source": FRANKFURT, "destination": VIRGINIA, "records": 120, "bytes": 4800,
        "classification": "personal", "subject_jurisdictions": ("DE",),
        "purpose": "analytics", "legal_basis": "contract", "exporter": ACME_EU,
        "importer": importer, "mechanism": {"kind": "scc", "mechanism_id": "scc-1"},
    }  # fmt: skip
    return sealed(DataMovement, 1, **{**body, **change})


def trained(status: str, **change: Any) -> Event:
    body = {
        "run_id": "run-7", "status": status, "model_name": "churn", "inputs": (US_COPY, "feats"),
        "code_version": "a1b2c3d", "location": VIRGINIA, "purpose": "analytics",
    }  # fmt: skip
    return sealed(TrainingRun, 2, **{**body, **change})


def deployed(status: str = "deployed") -> Event:
    return sealed(ModelDeployed, 3, deployment_id="dep-1", model_name="churn",
                  model_version="3", status=status, location=VIRGINIA,
                  endpoint="https://serving.example/churn")  # fmt: skip


def every_kind() -> list[Event]:
    return [
        declared(),
        declared(
            asset_id="feats",
            derived_from=(US_COPY,),
            declassification={
                "method": "k-anonymity",
                "approved_by": "dpo",
                "evidence_uri": "https://wiki/dpia-9",
            },
        ),
        moved(),
        moved(target_asset_id=None, operation="remote_access", mechanism=None),
        trained("started"),
        trained("completed", model_version="3", parameters={"depth": "6"}, metrics={"auc": 0.91}),
        trained("failed", error="out of memory"),
        trained("unknown"),
        deployed(),
        deployed("retired"),
        *(e for e in demo_events() if isinstance(e, EXPORTED)),
    ]


def as_json(event: Any) -> dict[str, Any]:
    return dict(json.loads(Serde.to_json(event)))


def facets_of(event: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, name, facet) of every facet of a serialised event."""
    found = []
    for key in ("run", "job", "dataset"):
        for name, facet in ((event.get(key) or {}).get("facets") or {}).items():
            found.append((key, name, facet))
    for key in ("inputs", "outputs"):
        for dataset in event.get(key) or ():
            for slot in ("facets", "inputFacets", "outputFacets"):
                found += [(key, name, f) for name, f in (dataset.get(slot) or {}).items()]
    return found


# ---- valid OpenLineage ---------------------------------------------------------------------


@pytest.mark.parametrize("event", every_kind(), ids=lambda e: type(e).__name__)
def test_every_exported_event_passes_the_openlineage_check_whole(event: Event) -> None:
    exported = [as_json(e) for e in to_openlineage(event)]
    assert exported, f"{type(event).__name__} exports nothing"
    for sent in exported:
        checked = check(json.dumps(sent))
        assert checked.notes == () and checked.deleted == ()
        assert facets_of(checked.event) == facets_of(sent)  # no facet dropped
        assert sent["producer"] == PRODUCER
        assert {f["_producer"] for _, _, f in facets_of(sent)} == {PRODUCER}
        assert sent["eventTime"] == event.envelope.event_time.isoformat(
            timespec="milliseconds"
        ).replace("+00:00", "Z")


@cache
def facet_validator(definition: str) -> jsonschema_rs.Validator:
    docs = [json.loads(f.read_text(encoding="utf-8")) for f in json_files(SCHEMAS)]
    registry = jsonschema_rs.Registry([(doc["$id"], doc) for doc in docs])
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": definition}
    return jsonschema_rs.validator_for(schema, registry=registry)


def json_files(folder: Any) -> list[Any]:
    found = []
    for entry in folder.iterdir():
        if entry.is_dir():
            found += json_files(entry)
        elif entry.name.endswith(".json"):
            found.append(entry)
    return found


@pytest.mark.parametrize("event", every_kind(), ids=lambda e: type(e).__name__)
def test_the_auditline_facets_fit_their_own_schemas(event: Event) -> None:
    for sent in map(as_json, to_openlineage(event)):
        for _, name, facet in facets_of(sent):
            if name == "auditline":
                url = facet["_schemaURL"]
                own = json.loads((SCHEMAS / url.split("#")[0].rsplit("/", 1)[-1]).read_text())
                assert url.startswith(own["$id"] + "#/$defs/")  # the schema file's $id
                errors = [e.message for e in facet_validator(url).iter_errors(facet)]
                assert errors == []


def test_the_command_offers_the_kinds_the_mapping_exports() -> None:
    from auditline.openlineage.export_cli import KINDS

    assert tuple(model.__name__ for model in EXPORTED) == KINDS


def test_kinds_without_lineage_export_nothing() -> None:
    prediction = next(e for e in demo_events() if isinstance(e, Prediction))
    assert to_openlineage(prediction) == []


# ---- the mapping ---------------------------------------------------------------------------


def test_an_asset_is_a_dataset_event_with_its_declaration_owner_and_parents() -> None:
    [sent] = map(as_json, to_openlineage(every_kind()[1]))
    dataset = sent["dataset"]
    assert (dataset["namespace"], dataset["name"]) == (DATASET_NAMESPACE, "feats")
    facet = dataset["facets"]["auditline"]
    assert facet["classification"] == "personal" and facet["residency"] == ["EEA"]
    assert facet["location"] == {"country": "DE", "provider": "aws", "region": "eu-central-1"}
    assert facet["owner"] == "crm-team"
    assert dataset["facets"]["ownership"]["owners"] == [{"name": "crm-team"}]
    [parent] = dataset["facets"]["lineage"]["inputs"]
    assert (parent["namespace"], parent["name"]) == ("s3://us-data", "copies/customers")
    assert parent["transformations"] == [
        {"type": "DIRECT", "description": "k-anonymity", "masking": True}
    ]


def test_a_movement_is_a_completed_run_from_the_source_location_to_the_destination() -> None:
    event = moved()
    [sent] = map(as_json, to_openlineage(event))
    assert sent["eventType"] == "COMPLETE"
    assert sent["run"]["runId"] == str(event.envelope.event_id)
    assert sent["job"]["name"] == f"movement/copy/{EU_RAW} -> {US_COPY}"
    [source], [target] = sent["inputs"], sent["outputs"]
    assert (source["namespace"], source["name"]) == ("s3://eu-data", "raw/customers")
    assert source["facets"]["auditline"]["location"]["country"] == "DE"
    assert target["facets"]["auditline"]["location"]["region"] == "us-east-1"
    assert target["outputFacets"]["outputStatistics"] | {"_producer": "", "_schemaURL": ""} == {
        "rowCount": 120, "size": 4800, "_producer": "", "_schemaURL": ""}  # fmt: skip
    job = sent["job"]["facets"]["auditline"]
    assert (job["purpose"], job["legal_basis"]) == ("analytics", "contract")
    assert job["importer"]["certifications"] == [
        {"scheme": "dpf", "status": "active", "as_of": "2026-01-01"}
    ]
    tags = {t["key"]: t["value"] for t in sent["run"]["facets"]["tags"]["tags"]}
    assert tags["auditline.mechanism"] == "scc" and tags["auditline.records"] == "120"


def test_a_movement_without_a_new_asset_reads_it_and_tags_where_it_went() -> None:
    [sent] = map(as_json, to_openlineage(moved(target_asset_id=None, operation="export")))
    assert sent["outputs"] == [] and sent["job"]["name"] == f"movement/export/{EU_RAW} -> US"
    tags = {t["key"]: t["value"] for t in sent["run"]["facets"]["tags"]["tags"]}
    assert tags["auditline.destination"] == "US (aws us-east-1)"


@pytest.mark.parametrize(("status", "state"), [("started", "START"), ("completed", "COMPLETE"),
                                               ("failed", "FAIL"), ("unknown", "OTHER")])  # fmt: skip
def test_a_training_run_is_one_run_of_its_model_s_job(status: str, state: str) -> None:
    version = "3" if status == "completed" else None
    [sent] = map(as_json, to_openlineage(trained(status, model_version=version)))
    assert sent["eventType"] == state and sent["job"]["name"] == "training/churn"
    assert sent["run"]["runId"] == training_run_id("run-7")  # the same run across its events
    assert [d["name"] for d in sent["inputs"]] == ["copies/customers", "feats"]
    training = sent["job"]["facets"]["auditline"]["training"]
    assert training == {"model_name": "churn", **({"model_version": "3"} if version else {})}
    outputs = [(d["namespace"], d["name"]) for d in sent["outputs"]]
    assert outputs == ([(MODEL_NAMESPACE, "churn:3")] if version else [])
    assert ("errorMessage" in sent["run"]["facets"]) == (status == "failed")


def test_a_deployment_reads_the_model_version_where_it_serves() -> None:
    for status in ("deployed", "retired"):
        event = deployed(status)
        [sent] = map(as_json, to_openlineage(event))
        assert sent["job"]["name"] == "deployment/dep-1"
        assert sent["run"]["runId"] == str(event.envelope.event_id)
        [model] = sent["inputs"]
        assert (model["namespace"], model["name"]) == (MODEL_NAMESPACE, "churn:3")
        assert model["facets"]["version"]["datasetVersion"] == "3"
        assert sent["job"]["facets"]["auditline"]["location"]["country"] == "US"
        tags = {t["key"]: t["value"] for t in sent["run"]["facets"]["tags"]["tags"]}
        assert tags["auditline.status"] == status


def test_the_datasets_a_run_names_carry_what_their_declarations_say() -> None:
    raw, copy = declared(), declared(asset_id=US_COPY, location=VIRGINIA, owner="us-team")
    state = {raw.asset_id: raw, copy.asset_id: copy}
    [move] = map(as_json, to_openlineage(moved(classification=None), state))
    source = move["inputs"][0]["facets"]["auditline"]
    assert (source["classification"], source["residency"], source["owner"]) == (
        "personal", ["EEA"], "crm-team")  # fmt: skip
    assert source["location"]["country"] == "DE"  # where the movement read it
    assert move["outputs"][0]["facets"]["auditline"]["owner"] == "us-team"
    [run] = map(as_json, to_openlineage(trained("started"), state))
    inputs = {d["name"]: d["facets"].get("auditline") for d in run["inputs"]}
    assert inputs["copies/customers"]["location"]["country"] == "US"
    assert inputs["feats"] is None  # not declared: no facet rather than an empty one


def test_run_ids_are_deterministic() -> None:
    event = trained("started")
    assert as_json(to_openlineage(event)[0]) == as_json(to_openlineage(event)[0])
    assert UUID(training_run_id("run-7")) != UUID(training_run_id("run-8"))


# ---- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("asset", "expected"), [
    ("s3://eu-data/customers", ("s3://eu-data", "customers")),
    ("s3://eu-data/raw/2026/customers", ("s3://eu-data", "raw/2026/customers")),
    ("postgres://db.internal:5432/crm.public.customers",
     ("postgres://db.internal:5432", "crm.public.customers")),
    ("ds:customers", (DATASET_NAMESPACE, "ds:customers")),
    ("bigquery/acme.eu.customers", (DATASET_NAMESPACE, "bigquery/acme.eu.customers")),
    ("s3://bucket-only", (DATASET_NAMESPACE, "s3://bucket-only")),
    ("file:///tmp/x.csv", (DATASET_NAMESPACE, "file:///tmp/x.csv")),
])  # fmt: skip
def test_an_asset_id_splits_after_its_authority_else_it_is_an_auditline_name(
    asset: str, expected: tuple[str, str]
) -> None:
    assert dataset_name(asset) == expected


_SCHEME = st.from_regex(r"[a-z][a-z0-9+.-]{0,8}", fullmatch=True)
_AUTHORITY = st.from_regex(r"[A-Za-z0-9.@:_-]{1,20}", fullmatch=True)
_NAME = st.from_regex(r"[A-Za-z0-9._-][A-Za-z0-9._/:-]{0,30}", fullmatch=True)


@given(_SCHEME, _AUTHORITY, _NAME)
def test_a_dataset_that_came_from_openlineage_goes_back_under_its_own_name(
    scheme: str, authority: str, name: str
) -> None:
    namespace = f"{scheme}://{authority}"
    assert dataset_name(asset_id(namespace, name)) == (namespace, name)


# ---- read back by the ingestion --------------------------------------------------------------


def read_back(event: Event, placed: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """What auditline's own ingestion makes of the exported events (no notes; every dataset
    placed by its facet when ``placed``)."""
    found = []
    for sent in to_openlineage(event):
        raw = Serde.to_json(sent).encode()
        result = convert(check(raw), raw, MappingConfig())
        assert result.notes == ()
        assert result.unplaced == () or not placed
        found += [(model.__name__, body) for model, body in result.events[1:]]
    return found


def test_an_exported_declaration_is_read_back_as_declared() -> None:
    event = declared()
    [(kind, body)] = read_back(event)
    assert kind == "AssetDeclared"
    again = AssetDeclared.model_validate({**body, "envelope": event.envelope})
    same = ("asset_id", "owner", "classification", "location", "residency",
            "origin_jurisdictions", "subject_jurisdictions")  # fmt: skip
    assert {k: getattr(again, k) for k in same} == {k: getattr(event, k) for k in same}


def test_an_exported_movement_is_read_back_between_the_same_places_and_parties() -> None:
    event = moved()
    kinds = read_back(event)
    [(_, body)] = [item for item in kinds if item[0] == "DataMovement"]
    again = DataMovement.model_validate({**body, "envelope": event.envelope})
    same = ("asset_id", "target_asset_id", "source", "destination", "records", "bytes",
            "purpose", "legal_basis", "exporter", "importer", "classification")  # fmt: skip
    assert {k: getattr(again, k) for k in same} == {k: getattr(event, k) for k in same}


def test_an_exported_training_run_is_read_back_as_the_model_s_training() -> None:
    event = trained("completed", model_version="3", inputs=(US_COPY,))
    [(kind, body)] = read_back(event, placed=False)  # its inputs are declared elsewhere
    assert kind == "TrainingRun"
    assert (body["model_name"], body["model_version"], body["status"]) == ("churn", "3",
                                                                          "completed")  # fmt: skip
    assert body["inputs"] == [US_COPY] and body["purpose"] == "analytics"


# ---- ingested events -------------------------------------------------------------------------


def test_events_converted_from_openlineage_are_told_apart_by_their_service() -> None:
    from_lineage = declared(service=SERVICE)
    assert ingested(from_lineage, {SERVICE})
    assert not ingested(declared(), {SERVICE})
    assert ingested(declared(service="ol-bridge"), {SERVICE, "ol-bridge"})


# ---- the command's words for a transport's failure -----------------------------------------


def test_a_refusal_and_an_unreachable_consumer_are_one_line_without_reprs() -> None:
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    from auditline.openlineage.export_cli import _failure

    response = requests.Response()
    response.status_code, response.reason = 400, "Bad Request"
    response._content = b'{"error": "bad\\n event"}'
    refused = _failure(requests.HTTPError(response=response), "http://x/api/v1/lineage", 3)
    assert isinstance(refused, EmitError) and "HTTP 400 Bad Request" in str(refused)
    assert "after 3 events" in str(refused) and "\n" not in str(refused)
    cause = NewConnectionError(object(), "Failed to establish a new connection")
    cause.__context__ = ConnectionRefusedError(111, "Connection refused")
    down = requests.ConnectionError(MaxRetryError(None, "/api/v1/lineage", cause))  # type: ignore[arg-type]
    error = _failure(down, "http://x/api/v1/lineage", 0)
    assert isinstance(error, UnavailableError)
    assert (
        str(error) == "cannot reach http://x/api/v1/lineage: Connection refused (nothing was sent)"
    )
