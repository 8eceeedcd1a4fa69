"""Scalar types and enumerations shared by the event models (mirroring the enum .avsc files)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, StringConstraints


def _utc_millis(value: datetime) -> datetime:
    """Normalise to UTC at millisecond precision, the precision of Avro timestamp-millis."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


UtcTime = Annotated[AwareDatetime, AfterValidator(_utc_millis)]
"""A timezone-aware instant, stored as UTC milliseconds; naive datetimes are rejected."""

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
"""ISO 3166-1 alpha-2 code, upper case."""

Jurisdiction = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_-]{1,15}$")]
"""A country code or a group name from the policy (EEA, ADEQUATE ...)."""

HexDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""Lower-case hex SHA-256."""

NonEmpty = Annotated[str, StringConstraints(min_length=1)]

UNKNOWN_COUNTRY = "ZZ"
"""Where something is when nothing says where (ISO 3166 user-assigned): recorded, never guessed."""

ZERO_HASH = "0" * 64
"""prev_hash of the first event of a stream."""


class Classification(StrEnum):
    """Data classification, least to most restrictive (see ``strictness``)."""

    UNKNOWN = "unknown"
    PUBLIC = "public"
    INTERNAL = "internal"
    AGGREGATE = "aggregate"
    ANONYMISED = "anonymised"
    PSEUDONYMISED = "pseudonymised"
    PERSONAL = "personal"
    PAYMENT = "payment"
    CN_SENSITIVE = "cn_sensitive"
    CN_IMPORTANT = "cn_important"
    SPECIAL_CATEGORY = "special_category"


class PartyRole(StrEnum):
    UNKNOWN = "unknown"
    CONTROLLER = "controller"
    JOINT_CONTROLLER = "joint_controller"
    PROCESSOR = "processor"
    SUB_PROCESSOR = "sub_processor"


class CertificationStatus(StrEnum):
    UNKNOWN = "unknown"
    ACTIVE = "active"
    LAPSED = "lapsed"
    WITHDRAWN = "withdrawn"


class MechanismKind(StrEnum):
    UNKNOWN = "unknown"
    NONE = "none"
    ADEQUACY = "adequacy"
    SCC = "scc"
    BCR = "bcr"
    CODE_OF_CONDUCT = "code_of_conduct"
    CERTIFICATION = "certification"
    DEROGATION = "derogation"
    CN_SECURITY_ASSESSMENT = "cn_security_assessment"
    CN_STANDARD_CONTRACT = "cn_standard_contract"
    CN_CERTIFICATION = "cn_certification"
    RU_NOTIFICATION = "ru_notification"
    ANPD_CLAUSES = "anpd_clauses"
    CONSENT = "consent"


class AssetKind(StrEnum):
    UNKNOWN = "unknown"
    DATASET = "dataset"
    FEATURE_STORE = "feature_store"
    MODEL = "model"
    MODEL_VERSION = "model_version"
    REPORT = "report"


class MovementOperation(StrEnum):
    UNKNOWN = "unknown"
    COPY = "copy"
    MOVE = "move"
    REPLICATE = "replicate"
    EXPORT = "export"
    REMOTE_ACCESS = "remote_access"
    DERIVE = "derive"


class RunStatus(StrEnum):
    UNKNOWN = "unknown"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"


class DeploymentStatus(StrEnum):
    UNKNOWN = "unknown"
    DEPLOYED = "deployed"
    RETIRED = "retired"


class FeatureKind(StrEnum):
    UNKNOWN = "unknown"
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class SignatureAlgorithm(StrEnum):
    UNKNOWN = "unknown"
    HMAC_SHA256 = "hmac_sha256"
    ED25519 = "ed25519"


class Decision(StrEnum):
    UNKNOWN = "unknown"
    ALLOW = "allow"
    ALLOW_WITH_OBLIGATIONS = "allow_with_obligations"
    ALERT = "alert"
    DENY = "deny"


class Severity(StrEnum):
    UNKNOWN = "unknown"
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class DriftState(StrEnum):
    UNKNOWN = "unknown"
    OPENED = "opened"
    CLOSED = "closed"


class IntegrityKind(StrEnum):
    UNKNOWN = "unknown"
    GAP = "gap"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    BROKEN_CHAIN = "broken_chain"
    BAD_SIGNATURE = "bad_signature"
    UNSIGNED = "unsigned"
    TAMPERED = "tampered"
    TRUNCATED = "truncated"
    VANISHED = "vanished"
    SILENT = "silent"
