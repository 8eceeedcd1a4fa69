"""The ``auditline`` custom facets, read tolerantly (pure).

A producer declares what auditline needs with two OpenLineage custom facets, both named
``auditline``; their JSON schemas (``schemas/AuditlineDatasetFacet.json`` and
``schemas/AuditlineJobFacet.json``) are the contract, and docs/openlineage.md shows them:

- on a dataset (``facets.auditline``): its classification, residency, origin and subject
  jurisdictions, subject citizenships, collection purposes, location and owner;
- on a job (``job.facets.auditline``): the purpose and legal basis of its processing, the
  exporter and importer of what it moves, where it runs, the model it trains.

Reading never raises: unknown keys are ignored, a null is absent, and a value that does not fit
(an unknown classification, a jurisdiction that is no code, a location whose region contradicts
its country) is left out with a note for people; one bad item of a list drops that item only.
Usual spellings are accepted where they are unambiguous: lower-case codes, ``Special
Category``, ``anonymized``, a single jurisdiction given as a string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from auditline.events import GIVEN, Classification, Location, Party
from auditline.events.types import Jurisdiction, NonEmpty

FACET = "auditline"
"""The key of both facets: ``dataset.facets.auditline`` and ``job.facets.auditline``."""
DATASET_SCHEMA_URL = (
    "https://auditline.dev/spec/facets/1-0-0/AuditlineDatasetFacet.json"
    "#/$defs/AuditlineDatasetFacet"
)
JOB_SCHEMA_URL = (
    "https://auditline.dev/spec/facets/1-0-0/AuditlineJobFacet.json#/$defs/AuditlineJobFacet"
)

_JURISDICTIONS = ("residency", "origin_jurisdictions", "subject_jurisdictions",
                  "subject_citizenships")  # fmt: skip
_SPELLINGS = {"anonymized": "anonymised", "pseudonymized": "pseudonymised",
              "special": "special_category"}  # fmt: skip
_LOCATION = ("country", "provider", "region")
_PARTY = ("entity_id", "name", "role", "country", "certifications")


class _Facet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Training(_Facet):
    model_name: NonEmpty
    model_version: str | None = None


class DatasetFacet(_Facet):
    """``dataset.facets.auditline``: what auditline must know of a dataset."""

    classification: Classification | None = None
    residency: tuple[Jurisdiction, ...] = ()
    origin_jurisdictions: tuple[Jurisdiction, ...] = ()
    subject_jurisdictions: tuple[Jurisdiction, ...] = ()
    subject_citizenships: tuple[Jurisdiction, ...] = ()
    collection_purposes: tuple[NonEmpty, ...] = ()
    location: Location | None = None
    owner: NonEmpty | None = None


class JobFacet(_Facet):
    """``job.facets.auditline``: why and between whom a job moves data, where it runs, what
    it trains."""

    purpose: NonEmpty | None = None
    legal_basis: NonEmpty | None = None
    training: Training | None = None
    exporter: Party | None = None
    importer: Party | None = None
    location: Location | None = None


M = TypeVar("M", bound=_Facet)


def dataset_facet(
    facets: Mapping[str, Any] | None, notes: list[str], *, where: str = ""
) -> DatasetFacet | None:
    """The ``auditline`` facet among a dataset's ``facets``, or None when it has none; what
    does not fit is left out and noted in ``notes`` (``where`` names the dataset there)."""
    return _read(DatasetFacet, facets, notes, where or "a dataset")


def job_facet(
    facets: Mapping[str, Any] | None, notes: list[str], *, where: str = ""
) -> JobFacet | None:
    """The ``auditline`` facet among a job's ``facets``, or None; as ``dataset_facet``."""
    return _read(JobFacet, facets, notes, where or "the job")


def declared_location(facets: Mapping[str, Any] | None) -> tuple[Location | None, str]:
    """The location the ``auditline`` facet of ``facets`` declares, and why there is none
    ("" when the facet declares none)."""
    facet = (facets or {}).get(FACET)
    raw = facet.get("location") if isinstance(facet, Mapping) else None
    if raw is None:
        return None, ""
    notes: list[str] = []
    found = _read(DatasetFacet, {FACET: {"location": raw}}, notes, "the dataset")
    return (found.location if found else None), "; ".join(notes)


def _read(
    model: type[M], facets: Mapping[str, Any] | None, notes: list[str], where: str
) -> M | None:
    raw = (facets or {}).get(FACET)
    if raw is None:
        return None
    label = f"the auditline facet of {where}"
    if not isinstance(raw, Mapping):
        notes.append(f"{label} is not an object: ignored")
        return None
    data = {key: _normalise(key, value) for key, value in raw.items()
            if key in model.model_fields and value is not None}  # fmt: skip
    for _ in range(len(data) + 1):
        try:
            return model.model_validate(data, context=GIVEN)
        except ValidationError as exc:
            data = _drop(data, exc.errors(include_url=False), label, notes)
    notes.append(f"{label} could not be read: ignored")  # each round drops a field or an item
    return None


def _normalise(key: str, value: Any) -> Any:
    """Unambiguous usual spellings, before validation."""
    if key == "classification" and isinstance(value, str):
        word = "_".join(value.strip().lower().replace("-", " ").split())
        return _SPELLINGS.get(word, word)
    if _is_list(key):
        items = [value] if isinstance(value, str) else value
        if key == "collection_purposes" or not isinstance(items, list):
            return items
        return [i.strip().upper() if isinstance(i, str) else i for i in items]
    if isinstance(value, Mapping) and key in ("location", "exporter", "importer"):
        return _only(value, _LOCATION) if key == "location" else _party(value)
    if key == "training" and isinstance(value, str):
        return {"model_name": value}
    return value


def _party(value: Mapping[str, Any]) -> dict[str, Any]:
    party = _only(value, _PARTY)
    if isinstance(party.get("role"), str):
        party["role"] = party["role"].strip().lower()
    return {"role": "unknown", **party}


def _only(value: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    kept = {k: value[k] for k in keys if value.get(k) is not None}
    if isinstance(kept.get("country"), str):
        kept["country"] = kept["country"].strip().upper()
    return kept


def _drop(
    data: dict[str, Any], errors: list[ErrorDetails], label: str, notes: list[str]
) -> dict[str, Any]:
    """``data`` without what ``errors`` point at: a bad item of a list, else the whole field
    (a location or a party is taken whole or not at all)."""
    data = dict(data)
    items: dict[str, set[int]] = {}
    for error in errors:
        loc = error["loc"]
        key = str(loc[0]) if loc else ""
        if key not in data:
            continue
        if _is_list(key) and len(loc) > 1 and isinstance(loc[1], int):
            items.setdefault(key, set()).add(loc[1])
            continue
        value = data.pop(key)
        shown = "" if isinstance(value, Mapping) else f" {_show(value)}"
        notes.append(f"{label}: {key}{shown} {_why(key, error)}: ignored")
    for key, bad in items.items():
        values = data[key]
        for index in sorted(bad):
            notes.append(f"{label}: {key} item {_show(values[index])} {_why(key)}: ignored")
        data[key] = [v for i, v in enumerate(values) if i not in bad]
    return data


def _is_list(key: str) -> bool:
    return key in _JURISDICTIONS or key == "collection_purposes"


def _why(key: str, error: ErrorDetails | None = None) -> str:
    """Why a value was left out, in words (``error`` None: an item of a list)."""
    if key == "classification":
        return "is not one of " + ", ".join(c.value for c in Classification)
    if _is_list(key) and error is not None:
        return "is not a list"
    if key == "collection_purposes":
        return "is not a purpose (a non-empty text)"
    if key in _JURISDICTIONS:
        return "is not a jurisdiction (a country code such as DE, or a policy group such as EEA)"
    assert error is not None
    inner = [str(part) for part in error["loc"][1:]]
    if inner and inner[-1] == "country" and error["type"] == "string_pattern_mismatch":
        return f"does not fit ({'.'.join(inner)}: not an ISO 3166-1 alpha-2 code such as DE)"
    prefix = f"{'.'.join(inner)}: " if inner else ""
    return f"does not fit ({prefix}{error['msg']})"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
