"""The auditline custom facets: their JSON schemas (the contract) and the tolerant reader."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditline.events import Classification, Location, PartyRole
from auditline.openlineage.facets import (
    DATASET_SCHEMA_URL,
    FACET,
    JOB_SCHEMA_URL,
    DatasetFacet,
    JobFacet,
    dataset_facet,
    declared_location,
    job_facet,
)

SCHEMAS = files("auditline.openlineage") / "schemas"
BASE = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/"


def schema(name: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / name).read_text()))


def registry() -> jsonschema_rs.Registry:
    docs = [schema("AuditlineDatasetFacet.json"), schema("AuditlineJobFacet.json"),
            json.loads((SCHEMAS / "openlineage" / "OpenLineage.json").read_text())]  # fmt: skip
    return jsonschema_rs.Registry([(doc["$id"], doc) for doc in docs])


def validator(url: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for({"$ref": url}, registry=registry())


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": "https://github.com/acme/lineage", "_schemaURL": DATASET_SCHEMA_URL,
            **fields}  # fmt: skip


def read_dataset(fields: Any) -> tuple[DatasetFacet | None, list[str]]:
    notes: list[str] = []
    return dataset_facet({FACET: fields}, notes, where="s3://eu/customers"), notes


def read_job(fields: Any) -> tuple[JobFacet | None, list[str]]:
    notes: list[str] = []
    return job_facet({FACET: fields}, notes), notes


# ---- the schemas: custom facets as the spec defines them ------------------------------------


@pytest.mark.parametrize(
    ("name", "base", "url"),
    [("AuditlineDatasetFacet", "DatasetFacet", DATASET_SCHEMA_URL),
     ("AuditlineJobFacet", "JobFacet", JOB_SCHEMA_URL)],
)  # fmt: skip
def test_each_schema_is_an_openlineage_custom_facet(name: str, base: str, url: str) -> None:
    doc = schema(f"{name}.json")
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"https://auditline.dev/spec/facets/1-0-0/{name}.json"
    assert url == f"{doc['$id']}#/$defs/{name}"
    assert doc["properties"] == {"auditline": {"$ref": f"#/$defs/{name}"}}
    assert doc["$defs"][name]["allOf"][0] == {"$ref": BASE + base}
    jsonschema_rs.meta.validate(doc)


def test_the_schemas_enumerate_auditline_s_own_values() -> None:
    dataset = schema("AuditlineDatasetFacet.json")["$defs"]["AuditlineDatasetFacet"]["allOf"][1]
    assert dataset["properties"]["classification"]["enum"] == [c.value for c in Classification]
    job = schema("AuditlineJobFacet.json")["$defs"]
    assert job["Party"]["properties"]["role"]["enum"] == [r.value for r in PartyRole]


VALID_DATASET = [
    facet(classification="personal", residency=["EEA"], origin_jurisdictions=["DE"],
          subject_jurisdictions=["DE", "AT"], subject_citizenships=["DE"],
          collection_purposes=["billing"], location={"country": "DE"}, owner="team-crm"),
    facet(location={"provider": "aws", "region": "eu-central-1"}),
    facet(location={"provider": "gcp", "region": "europe-west3", "country": "DE"}),
    facet(classification="special_category"),
    facet(),
]  # fmt: skip
INVALID_DATASET = [
    facet(classification="secret"),
    facet(residency=["de"]),
    facet(residency="DE"),
    facet(location={"provider": "aws"}),
    facet(location={"country": "Germany"}),
    facet(owner=""),
    facet(collection_purposes=[""]),
]


@pytest.mark.parametrize("value", VALID_DATASET)
def test_what_the_dataset_schema_accepts_is_read_without_a_note(value: dict[str, Any]) -> None:
    assert validator(DATASET_SCHEMA_URL).is_valid(value)
    read, notes = read_dataset(value)
    assert read is not None and notes == []


@pytest.mark.parametrize("value", INVALID_DATASET)
def test_what_the_dataset_schema_refuses_is_noted_or_read_as_a_usual_spelling(
    value: dict[str, Any],
) -> None:
    assert not validator(DATASET_SCHEMA_URL).is_valid(value)
    read, notes = read_dataset(value)
    spelled = value.get("residency") in (["de"], "DE")  # upper-cased, a single one listed
    assert read is not None and (notes == [] if spelled else len(notes) == 1)


PARTY = {"entity_id": "acme-gmbh", "name": "Acme GmbH", "role": "controller", "country": "DE"}
VALID_JOB = [
    {"purpose": "analytics", "legal_basis": "contract", "exporter": PARTY,
     "importer": {**PARTY, "entity_id": "acme-inc", "country": "US", "role": "processor"},
     "training": {"model_name": "churn", "model_version": "7"},
     "location": {"provider": "azure", "region": "westeurope"}},
    {"training": {"model_name": "churn"}},
    {"exporter": {"entity_id": "x", "name": "X", "country": "FR"}},
]  # fmt: skip
INVALID_JOB = [
    {"purpose": ""},
    {"training": {"model_version": "1"}},
    {"exporter": {"entity_id": "x", "name": "X"}},
    {"importer": {**PARTY, "role": "owner"}},
]


@pytest.mark.parametrize("value", VALID_JOB)
def test_what_the_job_schema_accepts_is_read_without_a_note(value: dict[str, Any]) -> None:
    value = {"_producer": "p", "_schemaURL": JOB_SCHEMA_URL, **value}
    assert validator(JOB_SCHEMA_URL).is_valid(value)
    read, notes = read_job(value)
    assert read is not None and notes == []


@pytest.mark.parametrize("value", INVALID_JOB)
def test_what_the_job_schema_refuses_is_noted(value: dict[str, Any]) -> None:
    value = {"_producer": "p", "_schemaURL": JOB_SCHEMA_URL, **value}
    assert not validator(JOB_SCHEMA_URL).is_valid(value)
    read, notes = read_job(value)
    assert read is not None and len(notes) == 1


# ---- reading the dataset facet --------------------------------------------------------------


def test_a_dataset_facet_is_read_into_auditline_values() -> None:
    read, notes = read_dataset(VALID_DATASET[0] | {"location": {"provider": "Amazon",
                                                               "region": "eu-central-1"}})  # fmt: skip
    assert notes == []
    assert read == DatasetFacet(
        classification=Classification.PERSONAL, residency=("EEA",), origin_jurisdictions=("DE",),
        subject_jurisdictions=("DE", "AT"), subject_citizenships=("DE",),
        collection_purposes=("billing",), owner="team-crm",
        location=Location(country="DE", provider="aws", region="eu-central-1"),
    )  # fmt: skip


def test_no_facet_is_none_without_a_note() -> None:
    notes: list[str] = []
    assert dataset_facet({}, notes) is None and dataset_facet(None, notes) is None
    assert dataset_facet({FACET: None}, notes) is None and notes == []


@pytest.mark.parametrize(
    ("given_", "read"),
    [
        ({"classification": "Special Category"}, {"classification": "special_category"}),
        ({"classification": " PERSONAL "}, {"classification": "personal"}),
        ({"classification": "anonymized"}, {"classification": "anonymised"}),
        ({"classification": "cn-important"}, {"classification": "cn_important"}),
        ({"residency": "eea"}, {"residency": ("EEA",)}),
        ({"subject_jurisdictions": [" de", "fr"]}, {"subject_jurisdictions": ("DE", "FR")}),
        ({"location": {"country": "de", "name": "Frankfurt"}}, {"location": Location(country="DE")}),
        ({"owner": None, "residency": None}, {}),
        ({"unknown": 1, "_deleted": False}, {}),
    ],
)  # fmt: skip
def test_usual_spellings_are_read_and_unknown_keys_ignored(
    given_: dict[str, Any], read: dict[str, Any]
) -> None:
    found, notes = read_dataset(given_)
    assert notes == [] and found == DatasetFacet.model_validate(read)


def test_a_bad_value_is_left_out_with_a_note_the_rest_kept() -> None:
    read, notes = read_dataset({"classification": "secret", "owner": "team-crm"})
    assert read == DatasetFacet(owner="team-crm")
    assert notes == [
        'the auditline facet of s3://eu/customers: classification "secret" is not one of '
        + ", ".join(c.value for c in Classification)
        + ": ignored"
    ]


def test_a_bad_item_drops_that_item_only() -> None:
    read, notes = read_dataset({"residency": ["DE", "not a code", 7, "AT"]})
    assert read is not None and read.residency == ("DE", "AT")
    assert notes == [
        f"the auditline facet of s3://eu/customers: residency item {item} is not a jurisdiction "
        "(a country code such as DE, or a policy group such as EEA): ignored"
        for item in ('"NOT A CODE"', "7")
    ]


def test_a_location_that_contradicts_its_region_is_left_out_with_the_reason() -> None:
    read, notes = read_dataset({"location": {"country": "US", "provider": "aws",
                                             "region": "eu-central-1"}, "owner": "o"})  # fmt: skip
    assert read == DatasetFacet(owner="o")
    (note,) = notes
    assert note.startswith("the auditline facet of s3://eu/customers: location does not fit "
                           "(aws region eu-central-1 is in DE")  # fmt: skip


@pytest.mark.parametrize("value", ["personal", 3, ["a"], True])
def test_a_facet_that_is_not_an_object_is_ignored_with_a_note(value: Any) -> None:
    read, notes = read_dataset(value)
    assert read is None
    assert notes == ["the auditline facet of s3://eu/customers is not an object: ignored"]


def test_declared_location_reads_the_location_alone() -> None:
    assert declared_location({FACET: {"location": {"country": "DE"}, "residency": 5}}) == (
        Location(country="DE"), "",
    )  # fmt: skip
    assert declared_location({FACET: {"classification": "personal"}}) == (None, "")
    assert declared_location({}) == (None, "")
    missing, why = declared_location({FACET: {"location": {"region": "eu-central-1"}}})
    assert missing is None and "names region 'eu-central-1' but no provider" in why


# ---- reading the job facet ------------------------------------------------------------------


def test_a_job_facet_is_read_into_auditline_values() -> None:
    read, notes = read_job(VALID_JOB[0])
    assert notes == [] and read is not None
    assert (read.purpose, read.legal_basis) == ("analytics", "contract")
    assert read.training is not None and read.training.model_name == "churn"
    assert read.exporter is not None and read.exporter.model_dump() == {**PARTY,
                                                                         "certifications": ()}  # fmt: skip
    assert read.importer is not None and read.importer.role is PartyRole.PROCESSOR
    assert read.location == Location(country="NL", provider="azure", region="westeurope")


def test_job_facet_spellings() -> None:
    read, notes = read_job(
        {
            "training": "churn",
            "exporter": {
                "entity_id": "x",
                "name": "X",
                "country": "fr",
                "role": "Joint_Controller",
                "lei": "5299",
            },
        }
    )
    assert notes == [] and read is not None
    assert read.training is not None and read.training.model_name == "churn"
    assert read.exporter is not None and read.exporter.role is PartyRole.JOINT_CONTROLLER
    assert read.exporter.country == "FR"


def test_a_party_is_taken_whole_or_not_at_all() -> None:
    read, notes = read_job({"purpose": "analytics", "importer": {**PARTY, "country": "USA"}})
    assert read == JobFacet(purpose="analytics")
    assert notes == ["the auditline facet of the job: importer does not fit (country: not an "
                     "ISO 3166-1 alpha-2 code such as DE): ignored"]  # fmt: skip


# ---- never raises ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
KEYS = st.sampled_from(["classification", "residency", "origin_jurisdictions", "location",
                        "owner", "collection_purposes", "purpose", "legal_basis", "training",
                        "exporter", "importer"])  # fmt: skip


@given(st.dictionaries(KEYS, JSON, max_size=6))
def test_reading_any_facet_never_raises(value: dict[str, Any]) -> None:
    notes: list[str] = []
    assert isinstance(dataset_facet({FACET: value}, notes), DatasetFacet)
    assert isinstance(job_facet({FACET: value}, notes), JobFacet)
    assert all(isinstance(n, str) and "\n" not in n for n in notes)
