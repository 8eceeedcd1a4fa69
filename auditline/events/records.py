"""Shared record models (mirroring the non-event record .avsc files) and the event base class."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from auditline.events.types import (
    CertificationStatus,
    CountryCode,
    FeatureKind,
    HexDigest,
    MechanismKind,
    NonEmpty,
    PartyRole,
    SignatureAlgorithm,
    UtcTime,
)


class Frozen(BaseModel):
    """Immutable value: frozen, unknown fields rejected."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=False, ser_json_bytes="base64", val_json_bytes="base64"
    )


class Location(Frozen):
    country: CountryCode
    provider: str | None = None
    region: str | None = None


class ProducerInfo(Frozen):
    service: NonEmpty
    instance: NonEmpty
    location: Location


class Signature(Frozen):
    algorithm: SignatureAlgorithm
    key_id: NonEmpty
    value: bytes


class Envelope(Frozen):
    hash: HexDigest  # hash and signature first: contracts layout 2 (see auditline.contracts)
    signature: Signature | None = None
    event_id: UUID
    event_time: UtcTime
    producer: ProducerInfo
    stream: NonEmpty
    sequence: int = Field(ge=0)
    prev_hash: HexDigest
    trace_id: str | None = None
    tenant: str | None = None
    schema_version: Literal[1, 2] = 2  # contracts layout: auditline.contracts.CONTRACTS_VERSION


class Certification(Frozen):
    scheme: NonEmpty
    status: CertificationStatus
    as_of: date
    valid_until: date | None = None


class Party(Frozen):
    entity_id: NonEmpty
    name: NonEmpty
    role: PartyRole
    country: CountryCode
    certifications: tuple[Certification, ...] = ()


class Declassification(Frozen):
    method: NonEmpty
    approved_by: NonEmpty
    evidence_uri: NonEmpty
    approval_id: str | None = None


class TransferMechanism(Frozen):
    kind: MechanismKind
    mechanism_id: str | None = None
    module: str | None = None
    signed_on: date | None = None
    valid_until: date | None = None
    tia_review_date: date | None = None
    occasional: bool = False
    supplementary_measures: tuple[str, ...] = ()
    onward_clause: bool = False


class FeatureProfile(Frozen):
    name: NonEmpty
    kind: FeatureKind
    count: int = Field(ge=0)
    missing: int = Field(ge=0)
    bin_edges: tuple[float, ...] = ()
    bin_counts: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()
    category_counts: tuple[int, ...] = ()
    other_count: int = 0
    mean: float | None = None
    std: float | None = None


class NumericColumn(Frozen):
    name: NonEmpty
    values: tuple[float | None, ...]


class CategoricalColumn(Frozen):
    name: NonEmpty
    values: tuple[str | None, ...]


class Event(Frozen):
    """Base of every event: an envelope plus body fields. ``SCHEMA`` names its Avro record."""

    SCHEMA: ClassVar[str]
    envelope: Envelope
