"""Shared record models (mirroring the non-event record .avsc files) and the event base class."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from auditline.events.types import (
    ZERO_HASH,
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
from auditline.regions import RegionError, locate


class Frozen(BaseModel):
    """Immutable value: frozen, unknown fields rejected."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=False, ser_json_bytes="base64", val_json_bytes="base64"
    )


GIVEN: dict[str, Any] = {"auditline_given": True}
"""Validation context of what a caller gives (the SDK, ``auditline check``): locations are
completed, normalised and checked against the region catalogue. Without it (decoding, stored
events) a location with a country is taken as recorded: its hash covers it as it is."""


class Location(Frozen):
    """Where something is. ``provider`` + ``region`` may stand in for ``country``: the region
    catalogue (``auditline.regions``) fills the country in and, for what a caller gives
    (``GIVEN``), normalises the provider's name and the region id and refuses an unknown region
    without a country or a country that contradicts the region. The wire always carries the
    country, provider and region."""

    # a Location object a caller gives is checked like a dict (pydantic keeps instances as
    # they are by default, which would let an unchecked one through GIVEN)
    model_config = ConfigDict(**Frozen.model_config, revalidate_instances="always")

    country: CountryCode
    provider: str | None = None
    region: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _complete_from_region(cls, data: Any, info: ValidationInfo) -> Any:
        given = bool(info.context and info.context.get("auditline_given"))
        if isinstance(data, Location):
            if not given:
                return data
            data = data.model_dump()
        if not isinstance(data, dict):
            return data
        if not given and data.get("country") is not None:
            return data  # recorded (decoded, stored): changed, it would no longer match its hash
        try:
            return locate(data)
        except RegionError as exc:
            raise PydanticCustomError(exc.kind, "{reason}", {"reason": str(exc)}) from None


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


def unsent_envelope(
    event_id: str, event_time: Any, *, service: str, instance: str, stream: str, sequence: int
) -> dict[str, Any]:
    """The envelope fields of an event judged but never sent (``auditline check``, pre-flight):
    a producer of unknown location (``ZZ``), no place in a hash chain."""
    return {
        "event_id": event_id, "event_time": event_time, "stream": stream, "sequence": sequence,
        "producer": {"service": service, "instance": instance, "location": {"country": "ZZ"}},
        "prev_hash": ZERO_HASH, "hash": ZERO_HASH,
    }  # fmt: skip


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
