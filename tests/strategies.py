"""Hypothesis strategies generating valid events from the Avro contracts themselves."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.contracts import LAYOUTS
from auditline.events import Event

_JURISDICTION_FIELDS = {
    "origin_jurisdictions", "subject_jurisdictions", "subject_citizenships", "residency",
    "subject_jurisdiction",
}  # fmt: skip
_HEX_FIELDS = {"prev_hash", "hash", "artifact_digest", "digest"}

hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
country = st.text(string.ascii_uppercase, min_size=2, max_size=2)
jurisdiction = st.from_regex(r"\A[A-Z][A-Z0-9_-]{1,6}\Z")
text = st.text(min_size=1, max_size=12)
instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _leaf(kind: str, field: str) -> st.SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if field in _HEX_FIELDS:
        return hex64
    if field == "country":
        return country
    if field in _JURISDICTION_FIELDS and kind == "string":
        return jurisdiction
    if field in {"latency_ms"}:
        return st.floats(min_value=0, max_value=1e9)
    if field == "schema_version":
        return st.sampled_from(LAYOUTS)
    if field == "sample_rate":
        return st.floats(min_value=1e-6, max_value=1.0)
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(0, 2**31 - 1),
        "long": st.integers(0, 2**63 - 1),
        "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
        "double": floats,
        "bytes": st.binary(max_size=16),
        "string": text,
    }[kind]


def _from_schema(node: Any, names: dict[str, Any], field: str) -> st.SearchStrategy[Any]:
    if isinstance(node, str):
        if node in names:
            return _from_schema(names[node], names, field)
        return _leaf(node, field)
    if isinstance(node, list):
        return st.one_of([_from_schema(branch, names, field) for branch in node])
    return _complex(node, names, field)


def _complex(node: dict[str, Any], names: dict[str, Any], field: str) -> st.SearchStrategy[Any]:
    kind, logical = node["type"], node.get("logicalType")
    if kind in {"record", "enum", "fixed"}:
        names.setdefault(f"{node.get('namespace', '')}.{node['name']}".lstrip("."), node)
    if logical == "timestamp-millis":
        return instants
    if logical == "date":
        return st.dates()
    if logical == "uuid":
        return st.uuids()
    if kind == "record":
        return st.fixed_dictionaries(
            {f["name"]: _from_schema(f["type"], names, f["name"]) for f in node["fields"]}
        )
    if kind == "enum":
        return st.sampled_from(node["symbols"])
    if kind == "array":
        return st.lists(_from_schema(node["items"], names, field), max_size=3)
    if kind == "map":
        return st.dictionaries(text, _from_schema(node["values"], names, field), max_size=3)
    return _from_schema(kind, names, field)


def _consistent_batch(record: dict[str, Any]) -> dict[str, Any]:
    """PredictionBatch columns must all have ``count`` values (or none)."""
    n = len(record["scores"])
    record["count"] = n

    def fit(values: list[Any]) -> list[Any]:
        return (values * n)[:n] if values else []

    record["labels"] = fit(record["labels"])
    record["subject_jurisdictions"] = fit(record["subject_jurisdictions"])
    for column in record["numeric_features"] + record["categorical_features"]:
        column["values"] = fit(column["values"]) or [None] * n
    return record


def _consistent_outcome(record: dict[str, Any]) -> dict[str, Any]:
    """An Outcome names one prediction (its id, or a batch and row) and has a label or value."""
    if record["prediction_id"] is None:
        record["batch_id"] = record["batch_id"] or "b"
        record["row"] = record["row"] or 0
    else:
        record["batch_id"] = record["row"] = None
    if record["label"] is None and record["value"] is None:
        record["label"] = "1"
    return record


def events_of(model: type[Event]) -> st.SearchStrategy[Event]:
    schema = Catalogue().for_model(model).schema
    records = _from_schema(schema.definition, {}, "")
    if model.__name__ == "PredictionBatch":
        records = records.map(_consistent_batch)
    if model.__name__ == "Outcome":
        records = records.map(_consistent_outcome)
    return records.map(model.model_validate)


def any_event() -> st.SearchStrategy[Event]:
    return st.one_of([events_of(entry.model) for entry in Catalogue()])
