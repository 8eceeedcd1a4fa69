"""validation.check: what is accepted, normalised, dropped with a note, or rejected (and why)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditline.errors import DecodeError, OpenLineageError
from auditline.openlineage import validation
from auditline.openlineage.validation import (
    EVENT_MAX_BYTES,
    FACET_MAX_BYTES,
    Checked,
    check,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "openlineage"
RUN_ID = "0190d2a2-3c4e-7b8f-9a1b-2c3d4e5f6a7b"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
SCHEMA_FACET = (
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
)


def fixture_events() -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (str(path.relative_to(FIXTURES)), i, event)
        for path in sorted(FIXTURES.rglob("*.json"))
        for i, event in enumerate(json.loads(path.read_text()))
    ]


def run_event(**change: Any) -> dict[str, Any]:
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-30T10:00:00.000Z",
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT,
        "run": {"runId": RUN_ID, "facets": {}},
        "job": {"namespace": "spark-prod", "name": "etl.copy", "facets": {}},
        "inputs": [{"namespace": "s3://eu-raw", "name": "customers", "facets": {}}],
        "outputs": [{"namespace": "s3://us-reports", "name": "daily", "facets": {}}],
    }
    event.update(change)
    return event


def schema_facet(**change: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": SCHEMA_FACET,
            "fields": [{"name": "id", "type": "long"}], **change}  # fmt: skip


def with_output_facets(**facets: Any) -> dict[str, Any]:
    return run_event(outputs=[{"namespace": "s3://us-reports", "name": "daily", "facets": facets}])


def checked(event: dict[str, Any]) -> Checked:
    return check(json.dumps(event).encode())


def rejection(event: Any) -> OpenLineageError:
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    with pytest.raises(OpenLineageError) as caught:
        check(raw)
    return caught.value


# ---- the fixtures: what the integrations send ----------------------------------------------


@pytest.mark.parametrize(("fixture", "index", "event"), fixture_events())
def test_every_fixture_event_is_accepted(fixture: str, index: int, event: dict[str, Any]) -> None:
    result = checked(event)
    expected = {"static/dataset_event_no_zone.json": "dataset",
                "static/dataset_event_deleted_facet.json": "dataset",
                "static/job_event.json": "job"}.get(fixture, "run")  # fmt: skip
    assert result.kind == expected
    assert result.event_time.tzinfo is UTC
    dropped = [n for n in result.notes if "dropped" in n]
    assert dropped == [], f"{fixture}[{index}] lost facets: {dropped}"


def test_the_fixtures_cover_what_the_issue_asks_for() -> None:
    events = [event for _, _, event in fixture_events()]
    types = {e.get("eventType") for e in events}
    assert {"START", "COMPLETE", "FAIL", "RUNNING"} <= types
    facets = [name for e in events for d in (*e.get("inputs", ()), *e.get("outputs", ()))
              for name in d.get("facets", {})]  # fmt: skip
    assert "columnLineage" in facets and "symlinks" in facets
    assert any("parent" in e.get("run", {}).get("facets", {}) for e in events)
    producers = " ".join(e["producer"] for e in events)
    assert all(name in producers for name in ("/spark", "/flink", "/dbt", "apache/airflow"))


def test_fixtures_as_bytes_text_and_dict_give_the_same_event() -> None:
    for _, _, event in fixture_events():
        text = json.dumps(event)
        as_bytes, as_text, as_dict = check(text.encode()), check(text), check(event)
        assert as_bytes == as_text == as_dict


def test_a_dict_given_is_not_changed() -> None:
    event = run_event(eventTime="2026-11-30T10:00:00", inputs=None)
    event["run"]["facets"] = {"gone": {"_deleted": True}, "empty": None}
    before = copy.deepcopy(event)
    result = check(event)
    assert event == before
    assert "inputs" not in result.event and result.event["run"]["facets"] == {}


def test_what_check_accepts_conforms_to_the_official_schema() -> None:
    """The hand checks and the normalisation agree with OpenLineage.json 2-0-2: each accepted
    fixture, with the base fields the spec requires and auditline tolerates put back, validates
    against the spec's root schema (oneOf RunEvent, DatasetEvent, JobEvent)."""
    folder = files("auditline.openlineage") / "schemas" / "openlineage"
    spec = json.loads((folder / "OpenLineage.json").read_text())
    validator = jsonschema_rs.validator_for(spec)
    for _, _, event in fixture_events():
        normalised = checked(event).event
        normalised.setdefault("schemaURL", validation.SPEC)
        assert validator.is_valid(_attributed(normalised)), normalised


def _attributed(value: Any) -> Any:
    if isinstance(value, dict):
        facets = {"facets", "inputFacets", "outputFacets"}
        return {k: ({n: {"_producer": "p", "_schemaURL": "s", **f} for n, f in v.items()}
                    if k in facets else _attributed(v)) for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_attributed(v) for v in value]
    return value


# ---- tolerance -------------------------------------------------------------------------------


def test_an_event_time_without_a_zone_is_read_as_utc_with_a_note() -> None:
    result = checked(run_event(eventTime="2026-11-30T10:00:00.123456"))
    assert result.event_time == datetime(2026, 11, 30, 10, 0, 0, 123456, tzinfo=UTC)
    assert result.event["eventTime"] == "2026-11-30T10:00:00.123456+00:00"
    assert result.notes == ("eventTime 2026-11-30T10:00:00.123456 has no time zone: read as UTC",)


@pytest.mark.parametrize(
    ("sent", "instant"),
    [
        ("2026-11-30T12:00:00+02:00", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("2026-11-30T10:00:00.123456789Z", datetime(2026, 11, 30, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-30T10:00:00Z[UTC]", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("2026-11-30T11:00:00[Europe/Berlin]", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("2026-11-30 10:00:00Z", datetime(2026, 11, 30, 10, tzinfo=UTC)),
    ],
)
def test_event_times_with_a_zone_become_utc(sent: str, instant: datetime) -> None:
    result = checked(run_event(eventTime=sent))
    assert result.event_time == instant and result.notes == ()
    assert datetime.fromisoformat(result.event["eventTime"]) == instant


def test_a_datetime_given_in_a_dict_is_taken() -> None:
    when = datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert check(run_event(eventTime=when)).event_time == when


def test_facets_without_producer_or_schema_url_are_accepted_with_one_note() -> None:
    facets = {"schema": {"fields": [{"name": "id"}]}, "custom": {"anything": 1},
              "complete": schema_facet()}  # fmt: skip
    result = checked(with_output_facets(**facets))
    assert set(result.event["outputs"][0]["facets"]) == {"schema", "custom", "complete"}
    assert result.notes == (
        "facets without _producer or _schemaURL accepted: outputs[0].facets.schema, "
        "outputs[0].facets.custom",
    )


def test_deleted_facets_are_removed_and_listed() -> None:
    event = run_event()
    event["job"]["facets"] = {"documentation": {"_deleted": True}, "sql": {"_deleted": False,
                              "_producer": PRODUCER, "_schemaURL": "s", "query": "select 1"}}  # fmt: skip
    result = checked(event)
    assert list(result.event["job"]["facets"]) == ["sql"]
    assert result.deleted == ("job.facets.documentation",) and result.notes == ()


def test_nulls_are_absent() -> None:
    event = run_event(inputs=None, outputs=[{"namespace": "s3://b", "name": "k", "facets": None,
                                             "outputFacets": None}])  # fmt: skip
    event["run"]["facets"] = {"parent": None}
    event["job"]["facets"] = None
    result = checked(event)
    assert "inputs" not in result.event and "facets" not in result.event["job"]
    assert result.event["outputs"] == [{"namespace": "s3://b", "name": "k"}]
    assert result.event["run"]["facets"] == {} and result.notes == ()


def test_a_facet_failing_its_schema_only_for_nulls_is_kept_without_them() -> None:
    facet = schema_facet(fields=[{"name": "id", "type": None, "description": None}])
    result = checked(with_output_facets(schema=facet))
    assert result.event["outputs"][0]["facets"]["schema"]["fields"] == [{"name": "id"}]
    assert result.notes == ()


def test_masked_values_and_unknown_members_pass() -> None:
    facet = schema_facet(fields=[{"name": "ssn", "type": "***", "x-masked": True}])
    assert checked(with_output_facets(schema=facet)).notes == ()


def test_a_lower_case_event_type_is_read_upper_case_with_a_note() -> None:
    result = checked(run_event(eventType="complete"))
    assert result.event["eventType"] == "COMPLETE"
    assert result.notes == ("eventType complete read as COMPLETE",)


def test_a_run_id_is_written_in_its_canonical_form() -> None:
    result = checked(run_event(run={"runId": RUN_ID.upper()}))
    assert result.event["run"]["runId"] == RUN_ID


def test_no_schema_url_is_read_as_the_vendored_spec() -> None:
    event = run_event()
    del event["schemaURL"]
    assert checked(event).notes == (f"no schemaURL: read as {validation.SPEC}",)


# ---- dropped with a note, the event kept ----------------------------------------------------


def test_a_facet_failing_its_schema_is_dropped_with_a_note() -> None:
    bad = {"_producer": PRODUCER, "_schemaURL": "s", "fields": ["not", "a", "map"]}
    result = checked(with_output_facets(columnLineage=bad, schema=schema_facet()))
    assert list(result.event["outputs"][0]["facets"]) == ["schema"]
    (note,) = result.notes
    assert note.startswith("facet outputs[0].facets.columnLineage does not fit its OpenLineage "
                           "schema (fields: ")  # fmt: skip
    assert note.endswith(": dropped")


def test_standard_facets_are_checked_in_their_own_place() -> None:
    """A facet name means a schema only where the spec puts it: dataQualityMetrics is checked
    as an input facet and as a dataset facet, outputStatistics only as an output facet."""
    wrong = {"rowCount": "many"}
    event = run_event()
    event["inputs"][0]["inputFacets"] = {"dataQualityMetrics": {"columnMetrics": "x"}}
    event["outputs"][0]["outputFacets"] = {"outputStatistics": wrong}
    event["outputs"][0]["facets"] = {"outputStatistics": wrong}  # a custom facet here
    result = checked(event)
    assert result.event["inputs"][0]["inputFacets"] == {}
    assert result.event["outputs"][0]["outputFacets"] == {}
    assert result.event["outputs"][0]["facets"] == {"outputStatistics": wrong}
    schemas = validation._schemas().facets
    assert {("input", "dataQualityMetrics"), ("dataset", "dataQualityMetrics"),
            ("output", "outputStatistics"), ("run", "parent"), ("job", "jobType"),
            ("dataset", "lineage"), ("job", "lineage"), ("input", "subset"),
            ("output", "subset")} <= set(schemas)  # fmt: skip


def test_a_facet_that_is_not_an_object_is_dropped_with_a_note() -> None:
    result = checked(with_output_facets(schema=["id"]))
    assert result.event["outputs"][0]["facets"] == {}
    assert result.notes == ("facet outputs[0].facets.schema is a JSON array: dropped",)


def test_facets_that_are_not_an_object_are_dropped_with_a_note() -> None:
    event = run_event()
    event["run"]["facets"] = [{"parent": {}}]
    result = checked(event)
    assert "facets" not in result.event["run"]
    assert result.notes == ("run.facets is a JSON array, not an object: dropped",)


def test_a_facet_over_the_bound_is_dropped_with_a_note_the_rest_kept() -> None:
    plan = {"_producer": PRODUCER, "_schemaURL": "s", "plan": "x" * FACET_MAX_BYTES}
    event = run_event()
    event["run"]["facets"] = {"spark.logicalPlan": plan, "small": {"_producer": "p",
                                                                   "_schemaURL": "s"}}  # fmt: skip
    result = checked(event)
    assert list(result.event["run"]["facets"]) == ["small"]
    (note,) = result.notes
    size = len(json.dumps(plan, separators=(",", ":")).encode())
    assert note == (f"facet run.facets.spark.logicalPlan is {size} bytes, over the "
                    f"{FACET_MAX_BYTES} bytes accepted for a facet: dropped")  # fmt: skip


def test_a_dataset_without_a_name_is_dropped_with_a_note() -> None:
    result = checked(run_event(inputs=[{"namespace": "s3://b"}, "s3://c/k",
                                       {"namespace": "s3://d", "name": "k"}]))  # fmt: skip
    assert result.event["inputs"] == [{"namespace": "s3://d", "name": "k"}]
    assert result.notes == (
        "inputs[0] has no name: dropped (a dataset is named by namespace and name)",
        "inputs[1] is a JSON string, not an object: dropped (a dataset is named by namespace "
        "and name)",
    )


# ---- rejected, with the reason -------------------------------------------------------------


def _without(*path: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(event: dict[str, Any]) -> dict[str, Any]:
        node = event
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return event

    return change


def _set(value: Any, *path: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(event: dict[str, Any]) -> dict[str, Any]:
        node = event
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return event

    return change


REJECTIONS = [
    (_without("eventTime"), "no eventTime: every OpenLineage event needs one", "eventTime"),
    (_set(None, "eventTime"), "no eventTime", "eventTime"),
    (_set("yesterday", "eventTime"), 'eventTime "yesterday" is not an ISO 8601 date-time',
     "eventTime"),
    (_set("2026-11-30", "eventTime"), 'eventTime "2026-11-30" is not an ISO 8601 date-time',
     "eventTime"),
    (_set(1764496800000, "eventTime"), "eventTime 1764496800000 is not an ISO 8601", "eventTime"),
    (_without("producer"), "no producer: the event must name what sent it", "producer"),
    (_without("run"), "no run: a RunEvent names its run", "run"),
    (_set("r1", "run"), "run is a JSON string, not an object", "run"),
    (_without("run", "runId"), "no run.runId: a RunEvent names its run by a UUID", "run.runId"),
    (_set("run-42", "run", "runId"), 'run.runId "run-42" is not a UUID', "run.runId"),
    (_set(42, "run", "runId"), "run.runId 42 is not a UUID", "run.runId"),
    (_without("job"), "no job: ", "job"),
    (_without("job", "namespace"), "no job.namespace: a job is named by namespace and name",
     "job.namespace"),
    (_set("", "job", "name"), "no job.name", "job.name"),
    (_set("PAUSED", "eventType"), 'eventType "PAUSED" is not one of START, RUNNING, COMPLETE',
     "eventType"),
    (_set({"namespace": "s3://b"}, "inputs"), "inputs is a JSON object, not a list", "inputs"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "reason", "field"), REJECTIONS)
def test_what_cannot_be_understood_is_rejected_with_its_reason(
    change: Callable[[dict[str, Any]], dict[str, Any]], reason: str, field: str
) -> None:
    error = rejection(change(run_event()))
    assert str(error).startswith(reason)
    assert error.field == field
    assert isinstance(error, DecodeError)  # dead-lettered like any undecodable record


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "the event is not JSON: "),
        (b"{\"eventTime\": ", "the event is not JSON: "),
        (b"\xff\xfe", "the event is not JSON: "),
        (b"[1, 2]", "the event is a JSON array, not an object"),
        (b"null", "the event is a JSON null, not an object"),
        (b"[" * 100_000, "the event's JSON is nested too deeply to read"),
        (b"{}", "neither run, job nor dataset: not an OpenLineage RunEvent, JobEvent or "
                "DatasetEvent"),
    ],
)  # fmt: skip
def test_what_is_not_an_event_is_rejected(raw: bytes, reason: str) -> None:
    assert str(rejection(raw)).startswith(reason)


def test_a_utf8_byte_order_mark_is_read_past() -> None:
    validation.prepare()
    assert check(b"\xef\xbb\xbf" + json.dumps(run_event()).encode()).kind == "run"


def test_the_event_bound_rejects_before_reading() -> None:
    big = b" " * (EVENT_MAX_BYTES + 1)
    assert str(rejection(big)).startswith(f"the event is {EVENT_MAX_BYTES + 1} bytes, over the")
    event = run_event()
    event["run"]["facets"] = {"huge": {"data": "x" * EVENT_MAX_BYTES}}
    with pytest.raises(OpenLineageError, match="bytes, over the 5242880 bytes accepted"):
        check(event)


def test_a_dataset_event_needs_its_dataset_named() -> None:
    event = {"eventTime": "2026-11-30T10:00:00Z", "producer": PRODUCER,
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"}  # fmt: skip
    assert str(rejection(event)).startswith("no dataset: a DatasetEvent names the dataset")
    error = rejection({**event, "dataset": {"namespace": "s3://b"}})
    assert str(error) == "the DatasetEvent's dataset has no name" and error.field == "dataset"


def test_a_job_event_with_a_run_fails_the_official_schema() -> None:
    event = run_event(
        schemaURL="https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"
    )
    error = rejection(event)
    assert str(error).startswith("the event: ") and str(error).endswith(
        "(OpenLineage job event schema)"
    )


def test_the_kind_comes_from_the_content_when_the_schema_url_says_none() -> None:
    base = {"eventTime": "2026-11-30T10:00:00Z", "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/1-0-5/OpenLineage.json"}  # fmt: skip
    job = {"namespace": "n", "name": "j"}
    assert checked({**base, "job": job}).kind == "job"
    assert checked({**base, "dataset": {"namespace": "n", "name": "d"}}).kind == "dataset"
    assert checked({**base, "job": job, "run": {"runId": RUN_ID}}).kind == "run"
    with pytest.raises(OpenLineageError, match=r"^no run: "):
        check({**base, "job": job, "eventType": "START"})  # an eventType makes a RunEvent


# ---- nothing crashes -----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12,
)  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list) else ()  # fmt: skip
    for key, child in items:
        found += _paths(child, (*prefix, key))
    return found


EVENTS = [event for _, _, event in fixture_events()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENTS), st.data(), JSON)
def test_any_part_replaced_by_any_json_is_accepted_or_rejected_never_a_crash(
    event: dict[str, Any], data: st.DataObject, value: Any
) -> None:
    event = copy.deepcopy(event)
    path = data.draw(st.sampled_from(_paths(event)))
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        result = checked(event)
    except OpenLineageError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert result.kind in ("run", "dataset", "job") and result.event_time.tzinfo is UTC
