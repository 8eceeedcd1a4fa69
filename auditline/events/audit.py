"""Audit events: assets, movements, training runs, deployments."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from auditline.events.records import (
    Declassification,
    Event,
    FeatureProfile,
    Location,
    Party,
    TransferMechanism,
)
from auditline.events.types import (
    AssetKind,
    Classification,
    DeploymentStatus,
    HexDigest,
    Jurisdiction,
    MovementOperation,
    NonEmpty,
    RunStatus,
)


class AssetDeclared(Event):
    SCHEMA: ClassVar[str] = "auditline.events.AssetDeclared"
    asset_id: NonEmpty
    asset_kind: AssetKind
    name: NonEmpty
    owner: NonEmpty
    classification: Classification
    location: Location
    origin_jurisdictions: tuple[Jurisdiction, ...] = ()
    subject_jurisdictions: tuple[Jurisdiction, ...] = ()
    subject_citizenships: tuple[Jurisdiction, ...] = ()
    residency: tuple[Jurisdiction, ...] = ()
    collection_purposes: tuple[str, ...] = ()
    derived_from: tuple[str, ...] = ()
    is_primary_store: bool = True
    declassification: Declassification | None = None


class DataMovement(Event):
    SCHEMA: ClassVar[str] = "auditline.events.DataMovement"
    asset_id: NonEmpty
    target_asset_id: str | None = None
    operation: MovementOperation
    source: Location
    destination: Location
    records: int = Field(ge=0)
    bytes: int = Field(ge=0)
    distinct_subjects: int | None = Field(default=None, ge=0)
    subject_jurisdictions: tuple[Jurisdiction, ...] = ()
    classification: Classification | None = None
    purpose: NonEmpty
    legal_basis: str | None = None
    exporter: Party
    importer: Party
    sub_processors: tuple[Party, ...] = ()
    mechanism: TransferMechanism | None = None
    onward_of: str | None = None


class TrainingRun(Event):
    SCHEMA: ClassVar[str] = "auditline.events.TrainingRun"
    run_id: NonEmpty
    status: RunStatus
    model_name: NonEmpty
    model_version: str | None = None
    inputs: tuple[str, ...] = ()
    code_version: NonEmpty
    parameters: dict[str, str] = Field(default_factory=dict)
    location: Location
    purpose: NonEmpty
    metrics: dict[str, float] = Field(default_factory=dict)
    feature_profiles: tuple[FeatureProfile, ...] = ()
    prediction_profile: FeatureProfile | None = None
    artifact_digest: HexDigest | None = None
    error: str | None = None


class ModelDeployed(Event):
    SCHEMA: ClassVar[str] = "auditline.events.ModelDeployed"
    deployment_id: NonEmpty
    model_name: NonEmpty
    model_version: NonEmpty
    status: DeploymentStatus
    location: Location
    endpoint: str | None = None
    artifact_digest: HexDigest | None = None
