"""OpenLineage event → audit events (pure: no I/O; docs/openlineage.md "Mapping").

One accepted OpenLineage event (``validation.check``) becomes, in emit order:

1. an ``OpenLineageEvent``: what the event said (run, job, parent, datasets as asset ids,
   symlinks, column lineage, unplaced datasets, tolerance notes), the SHA-256 of its bytes as
   received and, within ``MappingConfig.original_limit``, its text — the evidence;
2. an ``AssetDeclared`` for each dataset that carries the ``auditline`` dataset facet (a
   dataset without it declares nothing: it must not weaken what an SDK declared about it);
3. for a training job (the ``auditline`` job facet's ``training``, or a configured job pattern)
   a ``TrainingRun`` — started, completed or failed — over the run's inputs;
   otherwise, once data may have moved (RUNNING, COMPLETE, FAIL, ABORT), a ``DataMovement``
   (operation ``derive``) from each input to each output, from the input's location to the
   output's: the hop the sovereignty rules judge.

Every converted event carries the OpenLineage run id as ``trace_id``: a violation's facts name
it, and the evidence event is found by it. A dataset whose location cannot be resolved
(``locations.resolve``) is placed in ``ZZ`` (unknown), listed in ``unplaced``, never guessed.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditline.events import (
    AssetDeclared,
    DataMovement,
    Event,
    OpenLineageEvent,
    TrainingRun,
)
from auditline.events.types import UNKNOWN_COUNTRY
from auditline.openlineage.facets import DatasetFacet, JobFacet, dataset_facet, job_facet
from auditline.openlineage.locations import (
    Inventory,
    Placement,
    identity_of,
    resolve,
    where_run,
)
from auditline.openlineage.validation import Checked

EXPORTED_NAMESPACE = "auditline"
"""The namespace ``export`` gives datasets whose asset id has no ``scheme://authority``."""
MOVING = frozenset({"COMPLETE", "FAIL", "ABORT"})
"""Run states in which a batch job's data may have moved: a START announces, a RUNNING reports
progress (the job moves its data once, and says so at its end)."""
STREAMING_MOVING = MOVING | {"RUNNING"}
"""A streaming job's data flows while it runs (Flink reports RUNNING at each checkpoint)."""
MAX_LISTED = 500
"""Items of each list the evidence keeps (inputs, outputs, symlinks, unplaced, notes); the
rest counted in a note, so that one evidence record stays well inside a Kafka message."""
MAX_COLUMN_EDGES = 2_000
MAX_FLOWS = 10_000
"""Input → output movements recorded for one event; beyond them a note says how many were not."""
_LONG = 2**63 - 1
_RUN_STATUS = {"START": "started", "RUNNING": "started", "COMPLETE": "completed",
               "FAIL": "failed", "ABORT": "failed"}  # fmt: skip


@dataclass(frozen=True)
class TrainingPattern:
    """A job whose ``namespace/name`` matches ``job`` (a glob) trains ``model``."""

    job: str
    model: str


@dataclass(frozen=True)
class MappingConfig:
    """What the mapping needs beyond the event: where datasets are, which jobs train, the
    purpose a movement has when its job facet names none, how much of the original to keep."""

    inventory: Inventory = field(default_factory=Inventory)
    training: tuple[TrainingPattern, ...] = ()
    default_purpose: str = "unspecified"
    original_limit: int = 256 * 1024


@dataclass(frozen=True)
class Converted:
    """The audit events of one OpenLineage event, in emit order (the evidence first), each as
    (model, body fields without envelope); ``trace_id`` and ``event_time`` go on every one."""

    events: tuple[tuple[type[Event], dict[str, Any]], ...]
    trace_id: str | None
    event_time: datetime
    unplaced: tuple[str, ...]
    notes: tuple[str, ...]


def asset_id(namespace: str, name: str) -> str:
    """A dataset's auditline identity: ``namespace/name`` (one slash between them), e.g.
    ``s3://eu-data/customers`` or ``bigquery/project.dataset.table``; in the namespace
    ``auditline`` (what ``export`` names an asset id that has no ``scheme://``), the name."""
    return name if namespace == EXPORTED_NAMESPACE else identity_of(namespace, name)


def job_id(job: Mapping[str, Any]) -> str:
    return f"{job.get('namespace', '')}/{job.get('name', '')}"


@dataclass(frozen=True)
class _Dataset:
    asset_id: str
    name: str
    facets: Mapping[str, Any]
    placement: Placement
    declared: DatasetFacet | None
    statistics: Mapping[str, Any]

    @property
    def country(self) -> str:
        location = self.placement.location
        return location.country if location is not None else UNKNOWN_COUNTRY

    def location(self) -> dict[str, Any]:
        location = self.placement.location
        return {"country": UNKNOWN_COUNTRY} if location is None else location.model_dump()


def convert(checked: Checked, raw: bytes, config: MappingConfig) -> Converted:
    """The audit events of one checked OpenLineage event (see the module docstring)."""
    event, notes = checked.event, list(checked.notes)
    run = event.get("run") or {}
    job = event.get("job") or {}
    run_facets, job_facets = run.get("facets") or {}, job.get("facets") or {}
    run_id = run.get("runId")

    def datasets(key: str) -> list[_Dataset]:
        found = [_dataset(d, job_facets, run_facets, config.inventory, notes)
                 for d in event.get(key) or ()]  # fmt: skip
        return list({d.asset_id: d for d in found}.values())

    if checked.kind == "dataset":
        inputs, outputs = [], [_dataset(event["dataset"], {}, {}, config.inventory, notes)]
    else:
        inputs, outputs = datasets("inputs"), datasets("outputs")
    everything = list({d.asset_id: d for d in (*inputs, *outputs)}.values())
    unplaced = tuple(d.asset_id for d in everything if d.placement.location is None)
    event_type = (
        str(event.get("eventType") or "OTHER") if checked.kind == "run" else (checked.kind.upper())
    )
    converted: list[tuple[type[Event], dict[str, Any]]] = [
        (AssetDeclared, _declaration(d)) for d in everything if _declares(d, notes)
    ]
    if checked.kind == "run" and run_id is not None:
        declared = job_facet(job_facets, notes, where=job_id(job))
        ran = _Run(str(run_id), event_type, job, run_facets, declared, inputs, outputs)
        training = _training_model(job, declared, config.training)
        if training is not None:
            converted += _training(ran, training, config)
        elif event_type in (STREAMING_MOVING if _streaming(job_facets) else MOVING):
            converted += _movements(ran, config, notes)
    original = raw.decode("utf-8", "replace") if len(raw) <= config.original_limit else None
    if original is None:
        notes.append(f"the event's {len(raw)} bytes exceed {config.original_limit}: digest kept")
    parent = run_facets.get("parent") or {}
    if len(notes) > MAX_LISTED:
        notes[MAX_LISTED - 1 :] = [f"{len(notes) - MAX_LISTED + 1} more notes not kept"]
    evidence = {
        "event_type": event_type,
        "producer": str(event.get("producer") or ""),
        "schema_url": str(event.get("schemaURL") or ""),
        "run_id": run_id,
        "job": job_id(job) if job else None,
        "parent_run_id": (parent.get("run") or {}).get("runId"),
        "parent_job": job_id(parent["job"]) if isinstance(parent.get("job"), dict) else None,
        "inputs": _listed("inputs", [d.asset_id for d in inputs], notes),
        "outputs": _listed("outputs", [d.asset_id for d in outputs], notes),
        "aliases": _listed("symlinks", [a for d in everything for a in _aliases(d)], notes),
        "column_lineage": _listed(
            "column lineage edges",
            [e for d in outputs for e in _columns(d)],
            notes,
            MAX_COLUMN_EDGES,
        ),
        "unplaced": _listed("unplaced datasets", list(unplaced), notes),
        "notes": notes,
        "digest": hashlib.sha256(raw).hexdigest(),
        "original": original,
    }
    return Converted(
        ((OpenLineageEvent, evidence), *converted), run_id, checked.event_time, unplaced,
        tuple(notes),
    )  # fmt: skip


@dataclass(frozen=True)
class _Run:
    """A run event's parts the converted events are made of."""

    run_id: str
    event_type: str
    job: Mapping[str, Any]
    run_facets: Mapping[str, Any]
    declared: JobFacet | None
    inputs: Sequence[_Dataset]
    outputs: Sequence[_Dataset]

    def purpose(self, config: MappingConfig) -> str:
        return (self.declared.purpose if self.declared else None) or config.default_purpose


def _dataset(
    raw: Mapping[str, Any],
    job_facets: Mapping[str, Any],
    run_facets: Mapping[str, Any],
    inventory: Inventory,
    notes: list[str],
) -> _Dataset:
    namespace, name = str(raw.get("namespace", "")), str(raw.get("name", ""))
    facets = raw.get("facets") or {}
    placement = resolve(namespace, name, facets, job_facets, run_facets, inventory)
    statistics = {
        **((raw.get("inputFacets") or {}).get("dataQualityMetrics") or {}),
        **((raw.get("outputFacets") or {}).get("outputStatistics") or {}),
    }
    identity = asset_id(namespace, name)
    return _Dataset(
        identity, name, facets, placement, dataset_facet(facets, notes, where=identity),
        statistics,
    )  # fmt: skip


def _aliases(dataset: _Dataset) -> Iterator[dict[str, Any]]:
    for link in (dataset.facets.get("symlinks") or {}).get("identifiers") or ():
        if isinstance(link, dict) and link.get("namespace") and link.get("name"):
            yield {
                "asset_id": dataset.asset_id,
                "alias": asset_id(str(link["namespace"]), str(link["name"])),
                "alias_type": str(link["type"]) if link.get("type") else None,
            }


def _columns(dataset: _Dataset) -> Iterator[dict[str, Any]]:
    fields = (dataset.facets.get("columnLineage") or {}).get("fields") or {}
    for output_field, lineage in fields.items() if isinstance(fields, dict) else ():
        for source in (lineage or {}).get("inputFields") or ():
            if not isinstance(source, dict) or not source.get("field"):
                continue
            yield {
                "output_asset": dataset.asset_id, "output_field": str(output_field),
                "input_asset": asset_id(str(source.get("namespace", "")),
                                        str(source.get("name", ""))),
                "input_field": str(source["field"]),
                "transformation": _transformation(source, lineage),
            }  # fmt: skip


def _transformation(source: Mapping[str, Any], lineage: Mapping[str, Any]) -> str | None:
    """The input field's transformations (spec 1.2: type/subtype), else the field's older
    ``transformationType``/``transformationDescription``."""
    kinds = [
        "/".join(str(t[k]) for k in ("type", "subtype") if t.get(k))
        for t in source.get("transformations") or ()
        if isinstance(t, dict)
    ]
    if any(kinds):
        return ", ".join(k for k in kinds if k)
    legacy = lineage.get("transformationType") or lineage.get("transformationDescription")
    return str(legacy) if legacy else None


def _declares(dataset: _Dataset, notes: list[str]) -> bool:
    """Whether the dataset's facet declares it: a classification or jurisdictions, and a known
    place. A facet with only a location (or an owner) places it and declares nothing, and a
    dataset is never declared in ZZ: either would stand beside what an SDK declared of it."""
    facet = dataset.declared
    if facet is None:
        return False
    said = facet.model_dump(include=_DECLARING, exclude_defaults=True)
    if not any(value not in (None, (), [], "") for value in said.values()):
        return False
    if dataset.placement.location is None:
        notes.append(f"{dataset.asset_id}: its auditline facet is not declared: where it is is "
                     "unknown (give the facet a location, or an inventory rule)")  # fmt: skip
        return False
    return True


_DECLARING = {"classification", "residency", "origin_jurisdictions", "subject_jurisdictions",
              "subject_citizenships", "collection_purposes"}  # fmt: skip


def _listed(what: str, items: list[Any], notes: list[str], limit: int = MAX_LISTED) -> list[Any]:
    if len(items) <= limit:
        return items
    notes.append(f"{len(items) - limit} {what} beyond the first {limit} not listed")
    return items[:limit]


def _streaming(job_facets: Mapping[str, Any]) -> bool:
    job_type = job_facets.get("jobType")
    return isinstance(job_type, dict) and job_type.get("processingType") == "STREAMING"


def _declaration(dataset: _Dataset) -> dict[str, Any]:
    declared = dataset.declared
    assert declared is not None
    owners = (dataset.facets.get("ownership") or {}).get("owners") or ()
    owner = declared.owner or next(
        (str(o["name"]) for o in owners if isinstance(o, dict) and o.get("name")), "unknown"
    )
    return {
        "asset_id": dataset.asset_id, "asset_kind": "dataset", "name": dataset.name or "-",
        "owner": owner, "classification": declared.classification or "unknown",
        "location": dataset.location(),
        "origin_jurisdictions": declared.origin_jurisdictions,
        "subject_jurisdictions": declared.subject_jurisdictions,
        "residency": declared.residency,
        "subject_citizenships": declared.subject_citizenships,
        "collection_purposes": declared.collection_purposes,
    }  # fmt: skip


def _training_model(
    job: Mapping[str, Any], declared: JobFacet | None, patterns: Sequence[TrainingPattern]
) -> tuple[str, str | None] | None:
    """(model name, model version) when the job trains a model, else None."""
    if declared is not None and declared.training is not None:
        return declared.training.model_name, declared.training.model_version
    name = job_id(job)
    return next(((p.model, None) for p in patterns if fnmatch.fnmatchcase(name, p.job)), None)


def _training(
    ran: _Run, model: tuple[str, str | None], config: MappingConfig
) -> list[tuple[type[Event], dict[str, Any]]]:
    status = _RUN_STATUS.get(ran.event_type)
    if status is None:
        return []
    runs_in = where_run(ran.job.get("facets"), ran.run_facets).location
    placed = next((d for d in (*ran.outputs, *ran.inputs) if d.placement.location), None)
    location = (
        runs_in.model_dump() if runs_in is not None
        else placed.location() if placed is not None
        else {"country": UNKNOWN_COUNTRY}
    )  # fmt: skip
    source = (ran.job.get("facets") or {}).get("sourceCodeLocation") or {}
    code = source.get("version") or source.get("url") or job_id(ran.job)
    return [
        (
            TrainingRun,
            {
                "run_id": ran.run_id, "status": status, "model_name": model[0],
                "model_version": model[1] if status == "completed" else None,
                "inputs": [d.asset_id for d in ran.inputs], "code_version": str(code),
                "location": location,
                "purpose": ran.purpose(config),
                "error": "the OpenLineage run failed" if status == "failed" else None,
            },
        )
    ]  # fmt: skip


def _movements(
    ran: _Run, config: MappingConfig, notes: list[str]
) -> list[tuple[type[Event], dict[str, Any]]]:
    moves: list[tuple[type[Event], dict[str, Any]]] = []
    flows = len(ran.inputs) * len(ran.outputs)
    if flows > MAX_FLOWS:
        notes.append(f"{flows - MAX_FLOWS} input-to-output flows beyond the first {MAX_FLOWS} "
                     "not recorded as movements (nor judged)")  # fmt: skip
    owner = str(ran.job.get("namespace") or "unknown")
    declared = ran.declared
    for target in ran.outputs:
        for source in ran.inputs:
            if source.asset_id == target.asset_id:
                continue
            if len(moves) == MAX_FLOWS:
                return moves
            moves.append(
                (
                    DataMovement,
                    {
                        "asset_id": source.asset_id, "target_asset_id": target.asset_id,
                        "operation": "derive", "source": source.location(),
                        "destination": target.location(),
                        "records": _count(target.statistics, "rowCount"),
                        "bytes": _count(target.statistics, "size"),
                        "classification": (source.declared.classification
                                           if source.declared else None),
                        "purpose": ran.purpose(config),
                        "legal_basis": declared.legal_basis if declared else None,
                        "exporter": _party(declared, "exporter", owner, source.country),
                        "importer": _party(declared, "importer", owner, target.country),
                    },
                )
            )  # fmt: skip
    return moves


def _count(statistics: Mapping[str, Any], key: str) -> int:
    value = statistics.get(key)
    return min(value, _LONG) if isinstance(value, int) and value >= 0 else 0


def _party(declared: JobFacet | None, role: str, owner: str, country: str) -> dict[str, Any]:
    """The job facet's party, else the job's namespace (its owner) in the dataset's country."""
    given = getattr(declared, role, None) if declared is not None else None
    if given is not None:
        return dict(given.model_dump())
    return {"entity_id": owner, "name": owner, "role": "controller", "country": country}
