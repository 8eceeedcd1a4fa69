"""Audit events → OpenLineage events (pure: no I/O; docs/openlineage.md "Export").

What auditline knows of its lineage, as OpenLineage 2-0-2 events built with the openlineage-python
client's classes, each carrying ``PRODUCER``:

- ``AssetDeclared`` → a ``DatasetEvent`` of the asset with the ``auditline`` facet
  (classification, residency, origin and subject jurisdictions, subject citizenships, collection
  purposes, location, owner), ``ownership`` (the owner) and, when it derives from other assets,
  ``lineage`` (each of ``derived_from``; masked when declassified).
- ``DataMovement`` → a ``RunEvent`` COMPLETE, run id = the event id, of the job
  ``movement/<operation>/<asset> -> <target asset, or destination country>`` reading the asset
  (``auditline`` facet: the source location) and writing the target asset if there is one
  (``auditline`` facet: the destination location; ``outputStatistics``: records, bytes), each
  facet with what the asset's latest declaration says (classification, residency ...). Job
  facets ``auditline`` (purpose, legal basis, exporter, importer) and ``jobType``; run ``tags``
  (operation, records, bytes, mechanism, sub-processors, onward-of, destination, event id).
- ``TrainingRun`` → a ``RunEvent`` START, COMPLETE or FAIL (``unknown``: OTHER) of the job
  ``training/<model>``, one run id for all the events of a run (``training_run_id``), reading
  its inputs (with the ``auditline`` facet of their declarations) and writing the model version
  once known. Job facets ``auditline`` (purpose, training, location) and ``jobType``; run
  ``executionParameters``, ``errorMessage`` (failed), ``tags`` (status, code version, artifact
  digest, metrics, event id).
- ``ModelDeployed`` → a ``RunEvent`` COMPLETE, run id = the event id, of the job
  ``deployment/<deployment id>`` reading the model version. Job facets ``auditline`` (the
  serving location) and ``jobType``; run ``tags`` (status deployed or retired, endpoint,
  artifact digest, serving location, event id).

Jobs are in the namespace ``auditline``. A model version is the dataset ``<model>:<version>`` in
``auditline://models`` (facets ``version``, ``datasetType`` MODEL). An asset id becomes an
OpenLineage namespace and name by ``dataset_name``. Other kinds (predictions, alerts,
checkpoints, the OpenLineage evidence itself) are not exported. ``ingested`` tells the events
auditline converted from OpenLineage, which an export leaves out: a round trip does not loop.
The one state is the caller's: the latest declaration of each asset (``Declared``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

import attr
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    RunFacet,
    dataset_type_dataset,
    dataset_version_dataset,
    error_message_run,
    execution_parameters_run,
    job_type_job,
    lineage,
    output_statistics_output_dataset,
    ownership_dataset,
    tags_run,
)
from openlineage.client.utils import RedactMixin

from auditline import __version__
from auditline.events import (
    AssetDeclared,
    DataMovement,
    Event,
    Location,
    ModelDeployed,
    Party,
    TrainingRun,
)
from auditline.openlineage.facets import DATASET_SCHEMA_URL, FACET, JOB_SCHEMA_URL
from auditline.openlineage.mapping import EXPORTED_NAMESPACE

PRODUCER = f"https://github.com/auditline/auditline/tree/{__version__}"
"""``producer`` of every exported event and ``_producer`` of every facet in it."""
JOB_NAMESPACE = "auditline"
DATASET_NAMESPACE = EXPORTED_NAMESPACE
"""The namespace of an asset whose id is no ``scheme://authority/name`` (see ``dataset_name``)."""
MODEL_NAMESPACE = "auditline://models"
RUN_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "https://auditline.dev/spec/openlineage/runs")
"""The uuid5 namespace of the run ids of training runs (``training_run_id``)."""
INTEGRATION = "AUDITLINE"

OpenLineage: TypeAlias = RunEvent | DatasetEvent | JobEvent
Declared: TypeAlias = Mapping[str, AssetDeclared]
"""The latest declaration of each asset, by asset id."""
_NONE: Declared = MappingProxyType({})
EXPORTED: tuple[type[Event], ...] = (AssetDeclared, DataMovement, TrainingRun, ModelDeployed)
"""The kinds an export maps, in the order of the table above."""

_URI = re.compile(r"^(?P<namespace>[A-Za-z][A-Za-z0-9+.-]*://[^/]+)/(?P<name>[^/].*)$")
_RUN_STATES = {"started": RunState.START, "completed": RunState.COMPLETE,
               "failed": RunState.FAIL}  # fmt: skip


# ---- the auditline facets (schemas/Auditline*Facet.json) ------------------------------------


@attr.define
class FacetLocation(RedactMixin):
    country: str
    provider: str | None = attr.field(default=None)
    region: str | None = attr.field(default=None)

    _skip_redact: ClassVar[list[str]] = ["country", "provider", "region"]


@attr.define
class FacetCertification(RedactMixin):
    scheme: str
    status: str
    as_of: str
    valid_until: str | None = attr.field(default=None)

    _skip_redact: ClassVar[list[str]] = ["scheme", "status", "as_of", "valid_until"]


@attr.define
class FacetParty(RedactMixin):
    entity_id: str
    name: str
    role: str
    country: str
    certifications: list[FacetCertification] | None = attr.field(default=None)

    _skip_redact: ClassVar[list[str]] = ["entity_id", "name", "role", "country"]


@attr.define
class FacetTraining(RedactMixin):
    model_name: str
    model_version: str | None = attr.field(default=None)

    _skip_redact: ClassVar[list[str]] = ["model_name", "model_version"]


@attr.define
class AuditlineDatasetFacet(DatasetFacet):
    """``dataset.facets.auditline`` (schemas/AuditlineDatasetFacet.json)."""

    classification: str | None = attr.field(default=None)
    residency: list[str] | None = attr.field(default=None)
    origin_jurisdictions: list[str] | None = attr.field(default=None)
    subject_jurisdictions: list[str] | None = attr.field(default=None)
    subject_citizenships: list[str] | None = attr.field(default=None)
    collection_purposes: list[str] | None = attr.field(default=None)
    location: FacetLocation | None = attr.field(default=None)
    owner: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return DATASET_SCHEMA_URL


@attr.define
class AuditlineJobFacet(JobFacet):
    """``job.facets.auditline`` (schemas/AuditlineJobFacet.json)."""

    purpose: str | None = attr.field(default=None)
    legal_basis: str | None = attr.field(default=None)
    training: FacetTraining | None = attr.field(default=None)
    exporter: FacetParty | None = attr.field(default=None)
    importer: FacetParty | None = attr.field(default=None)
    location: FacetLocation | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return JOB_SCHEMA_URL


# ---- mapping -------------------------------------------------------------------------------


def dataset_name(asset_id: str) -> tuple[str, str]:
    """An asset's OpenLineage (namespace, name). An id ``scheme://authority/name`` (as
    ``mapping.asset_id`` writes a dataset that came from OpenLineage, and as the OpenLineage
    naming spec builds a dataset's URI) is split after its authority: ``s3://eu-data/raw/c`` is
    ``s3://eu-data`` and ``raw/c``; any other id is a name in ``DATASET_NAMESPACE``."""
    found = _URI.match(asset_id)
    if found is None:
        return DATASET_NAMESPACE, asset_id
    return found["namespace"], found["name"]


def training_run_id(run_id: str) -> str:
    """The OpenLineage run id of a training run: the same for each of its events."""
    return str(uuid.uuid5(RUN_IDS, f"training:{run_id}"))


def ingested(event: Event, ingesting: Collection[str]) -> bool:
    """Whether ``event`` was converted from OpenLineage: emitted by an ingesting service."""
    return event.envelope.producer.service in ingesting


def to_openlineage(event: Event, declared: Declared = _NONE) -> list[OpenLineage]:
    """The OpenLineage events of one audit event (none for a kind not exported). ``declared``:
    the latest declaration of each asset as of the event (the caller's state), whose facts go
    in the ``auditline`` facet of a dataset a movement or a training run names."""
    build = _BUILDERS.get(type(event))
    return [] if build is None else build(event, declared)


def _asset(event: AssetDeclared, declared: Declared) -> list[OpenLineage]:
    namespace, name = dataset_name(event.asset_id)
    facets: dict[str, DatasetFacet] = {
        FACET: _dataset_facet(
            event.location, event.classification, event.subject_jurisdictions, event
        ),
        "ownership": ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=event.owner)], producer=PRODUCER
        ),
    }  # fmt: skip
    if event.derived_from:
        masked = event.declassification
        steps = [lineage.LineageTransformation(type="DIRECT", description=masked.method,
                                               masking=True)] if masked else None  # fmt: skip
        parents: list[lineage.LineageInput] = [
            lineage.LineageDatasetInput(*dataset_name(p), type="DATASET", transformations=steps)
            for p in event.derived_from
        ]
        facets["lineage"] = lineage.LineageDatasetFacet(
            inputs=parents, fields=None, producer=PRODUCER
        )
    dataset = StaticDataset(namespace, name, facets=facets)
    return [DatasetEvent(eventTime=_time(event), producer=PRODUCER, dataset=dataset)]


def _movement(event: DataMovement, declared: Declared) -> list[OpenLineage]:
    target = event.target_asset_id

    def at(asset: str, where: Location) -> dict[str, DatasetFacet]:
        known = declared.get(asset)
        classification = event.classification or (known.classification if known else None)
        subjects = event.subject_jurisdictions or (known.subject_jurisdictions if known else ())
        return {FACET: _dataset_facet(where, classification, subjects, known)}

    inputs = [InputDataset(*dataset_name(event.asset_id), facets=at(event.asset_id, event.source))]
    outputs = []
    if target is not None:
        statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=event.records, size=event.bytes, producer=PRODUCER
        )
        outputs.append(OutputDataset(*dataset_name(target), facets=at(target, event.destination),
                                     outputFacets={"outputStatistics": statistics}))  # fmt: skip
    destination = target if target is not None else event.destination.country
    job = _job(
        f"movement/{event.operation}/{event.asset_id} -> {destination}", "MOVEMENT",
        AuditlineJobFacet(purpose=event.purpose, legal_basis=event.legal_basis,
                          exporter=_party(event.exporter), importer=_party(event.importer),
                          producer=PRODUCER),
    )  # fmt: skip
    run = Run(runId=str(event.envelope.event_id), facets={"tags": _movement_tags(event)})
    return [_run_event(event, RunState.COMPLETE, run, job, inputs, outputs)]


def _movement_tags(event: DataMovement) -> tags_run.TagsRunFacet:
    mechanism = event.mechanism
    return _tags(
        event, operation=event.operation, records=event.records, bytes=event.bytes,
        distinct_subjects=event.distinct_subjects,
        mechanism=mechanism.kind if mechanism else None,
        mechanism_id=mechanism.mechanism_id if mechanism else None,
        sub_processors=",".join(p.entity_id for p in event.sub_processors),
        onward_of=event.onward_of,
        destination=None if event.target_asset_id else _place(event.destination),
    )  # fmt: skip


def _training(event: TrainingRun, declared: Declared) -> list[OpenLineage]:
    version = event.model_version
    outputs = [] if version is None else [OutputDataset(**_model(event.model_name, version))]
    job = _job(
        f"training/{event.model_name}", "TRAINING",
        AuditlineJobFacet(purpose=event.purpose, training=FacetTraining(event.model_name, version),
                          location=_location(event.location), producer=PRODUCER),
    )  # fmt: skip
    state = _RUN_STATES.get(str(event.status), RunState.OTHER)
    run = Run(runId=training_run_id(event.run_id), facets=_training_facets(event))
    inputs = [InputDataset(*dataset_name(asset), facets=_as_declared(declared.get(asset)))
              for asset in event.inputs]  # fmt: skip
    return [_run_event(event, state, run, job, inputs, outputs)]


def _training_facets(event: TrainingRun) -> dict[str, RunFacet]:
    metrics = {f"metric.{name}": value for name, value in sorted(event.metrics.items())}
    facets: dict[str, RunFacet] = {
        "tags": _tags(event, status=event.status, code_version=event.code_version,
                      artifact_digest=event.artifact_digest, **metrics),
    }  # fmt: skip
    if event.parameters:
        facets["executionParameters"] = execution_parameters_run.ExecutionParametersRunFacet(
            parameters=[execution_parameters_run.ExecutionParameter(key=k, value=v)
                        for k, v in sorted(event.parameters.items())],
            producer=PRODUCER,
        )  # fmt: skip
    if event.status == "failed":
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=event.error or "the training run failed", programmingLanguage="unknown",
            producer=PRODUCER,
        )  # fmt: skip
    return facets


def _deployment(event: ModelDeployed, declared: Declared) -> list[OpenLineage]:
    job = _job(
        f"deployment/{event.deployment_id}",
        "DEPLOYMENT",
        AuditlineJobFacet(location=_location(event.location), producer=PRODUCER),
    )
    tags = _tags(
        event, status=event.status, endpoint=event.endpoint,
        artifact_digest=event.artifact_digest, serving=_place(event.location),
    )  # fmt: skip
    run = Run(runId=str(event.envelope.event_id), facets={"tags": tags})
    inputs = [InputDataset(**_model(event.model_name, event.model_version))]
    return [_run_event(event, RunState.COMPLETE, run, job, inputs, [])]


_BUILDERS: dict[type[Event], Callable[[Any, Declared], list[OpenLineage]]] = {
    AssetDeclared: _asset,
    DataMovement: _movement,
    TrainingRun: _training,
    ModelDeployed: _deployment,
}


# ---- pieces --------------------------------------------------------------------------------


def _time(event: Event) -> str:
    """The event's time, ISO 8601 in UTC to the millisecond (``...Z``)."""
    stamp = event.envelope.event_time.isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _run_event(  # noqa: PLR0917 - the parts of a RunEvent, in the spec's order
    event: Event,
    state: RunState,
    run: Run,
    job: Job,
    inputs: list[InputDataset],
    outputs: list[OutputDataset],
) -> RunEvent:
    return RunEvent(
        eventType=state, eventTime=_time(event), run=run, job=job, inputs=inputs,
        outputs=outputs, producer=PRODUCER,
    )  # fmt: skip


def _job(name: str, kind: str, facet: AuditlineJobFacet) -> Job:
    job_type = job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration=INTEGRATION, jobType=kind, producer=PRODUCER
    )
    return Job(JOB_NAMESPACE, name, facets={FACET: facet, "jobType": job_type})


def _model(name: str, version: str) -> dict[str, Any]:
    """A model version as a dataset: its namespace, name and facets."""
    facets: dict[str, DatasetFacet] = {
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=version, producer=PRODUCER
        ),
        "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet(
            datasetType="MODEL", producer=PRODUCER
        ),
    }
    return {"namespace": MODEL_NAMESPACE, "name": f"{name}:{version}", "facets": facets}


def _dataset_facet(
    location: Location,
    classification: str | None,
    subject_jurisdictions: tuple[str, ...],
    asset: AssetDeclared | None = None,
) -> AuditlineDatasetFacet:
    """The ``auditline`` facet of a dataset at ``location``, with what ``asset`` declares of it;
    empty lists are left out (absent is empty to the reader)."""

    def listed(values: tuple[str, ...]) -> list[str] | None:
        return list(values) or None

    return AuditlineDatasetFacet(
        classification=None if classification is None else str(classification),
        residency=listed(asset.residency) if asset else None,
        origin_jurisdictions=listed(asset.origin_jurisdictions) if asset else None,
        subject_jurisdictions=listed(subject_jurisdictions),
        subject_citizenships=listed(asset.subject_citizenships) if asset else None,
        collection_purposes=listed(asset.collection_purposes) if asset else None,
        location=_location(location), owner=asset.owner if asset else None, producer=PRODUCER,
    )  # fmt: skip


def _as_declared(asset: AssetDeclared | None) -> dict[str, DatasetFacet]:
    """The ``auditline`` facet of a declared asset where it is declared; none if undeclared."""
    if asset is None:
        return {}
    return {FACET: _dataset_facet(asset.location, asset.classification,
                                  asset.subject_jurisdictions, asset)}  # fmt: skip


def _location(location: Location) -> FacetLocation:
    return FacetLocation(location.country, location.provider, location.region)


def _place(location: Location) -> str:
    """A location for people: ``US``, ``US (aws us-east-1)``."""
    where = " ".join(part for part in (location.provider, location.region) if part)
    return f"{location.country} ({where})" if where else location.country


def _party(party: Party) -> FacetParty:
    certifications = [
        FacetCertification(
            c.scheme, str(c.status), c.as_of.isoformat(),
            c.valid_until.isoformat() if c.valid_until else None,
        )
        for c in party.certifications
    ]  # fmt: skip
    return FacetParty(party.entity_id, party.name, str(party.role), party.country,
                      certifications or None)  # fmt: skip


def _tags(event: Event, **values: Any) -> tags_run.TagsRunFacet:
    """Run tags ``auditline.<key>`` (the audit event id first); empty values left out."""
    pairs: Mapping[str, Any] = {"event_id": event.envelope.event_id, **values}
    return tags_run.TagsRunFacet(
        tags=[tags_run.TagsRunFacetFields(key=f"auditline.{key}", value=str(value),
                                          source=INTEGRATION)
              for key, value in pairs.items() if value is not None and value != ""],
        producer=PRODUCER,
    )  # fmt: skip
