"""The one error root of auditline, with sub-trees by what the caller must do.

Driver exceptions (fastavro, confluent-kafka, clickhouse-connect ...) are wrapped once, with
``raise ... from exc``, in the module that owns the driver. Messages say what to do next.
"""

from __future__ import annotations


class AuditlineError(Exception):
    """Root of every error auditline raises on purpose."""


class ConfigError(AuditlineError):
    """Settings are missing, malformed or unknown: fix the environment or the settings file."""


class SchemaError(AuditlineError):
    """An event does not fit its Avro contract."""


class InvalidEventError(SchemaError):
    """Event fields fail validation; ``field`` names the first offending field (dotted path)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DecodeError(SchemaError):
    """Bytes could not be turned back into an event. Dead-letter the record with ``str(err)``."""


class TruncatedMessageError(DecodeError):
    """The message ends before its header or body does."""


class UnknownSchemaError(DecodeError):
    """The message names a schema (fingerprint or registry id) this process does not know."""


class SchemaMismatchError(DecodeError):
    """The bytes do not decode with the schema they name, or decode to an invalid event."""


class OpenLineageError(DecodeError):
    """An OpenLineage event cannot be understood (not JSON, no eventTime, no run id, no job
    name, over the size bound ...): reject it with ``str(err)`` (HTTP 400 with a JSON error,
    the dead-letter topic on Kafka). ``field`` names the offending part (dotted path) if one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EmitError(AuditlineError):
    """An event could not be handed to the transport or spool."""


class SinkError(AuditlineError):
    """The store rejected or could not take rows."""


class PolicyError(AuditlineError):
    """A policy file is invalid."""


class NotFoundError(AuditlineError):
    """An id, producer or node the caller named does not exist: check it (exit code 4)."""


class UnavailableError(AuditlineError):
    """A broker, store or endpoint could not be reached in time: start it or fix its address
    (exit code 3)."""


class StoreUnavailableError(SinkError, UnavailableError):
    """The store (a server, or the process owning an embedded store) did not answer."""
