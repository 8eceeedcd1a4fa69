"""Typed, layered settings: constructor arguments > ``AUDITLINE_*`` environment > defaults.

Nested sections use ``__``: ``AUDITLINE_KAFKA__BOOTSTRAP_SERVERS=broker:9092``. Unknown keys fail
loudly, in the environment too (a misspelt ``AUDITLINE_KAFKA__BOOTSTRAP_SERVER`` is an error, not
a silent default). ``AUDITLINE_TEST_*`` is reserved for the test harness and ignored here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from auditline.errors import ConfigError

ENV_PREFIX = "AUDITLINE_"
RESERVED_PREFIXES = ("AUDITLINE_TEST_",)


def data_dir() -> Path:
    """The per-user data directory (e.g. ~/.local/share/auditline): defaults never depend on the
    current directory, so a service restarted elsewhere finds its spool and sequence again."""
    return Path(platformdirs.user_data_dir("auditline", appauthor=False))


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """Broker connection; security options pass through to librdkafka unchanged."""

    bootstrap_servers: str = "localhost:9092"
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    connect_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="How long `auditline sink`/`worker`/`verify --broker` wait for a broker to "
        "answer before exiting with code 3.",
    )
    extra: dict[str, str] = Field(
        default_factory=dict,
        description='Any other librdkafka property, e.g. {"client.rack": "eu1"}.',
    )

    def client_conf(self) -> dict[str, str]:
        """librdkafka configuration for confluent-kafka clients."""
        conf = {"bootstrap.servers": self.bootstrap_servers}
        named = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        conf.update({key: value for key, value in named.items() if value is not None})
        conf.update(self.extra)
        return conf


class SchemaRegistrySettings(_Section):
    """Confluent-compatible Schema Registry; without a URL the single-object framing is used."""

    url: str | None = None
    basic_auth_user_info: SecretStr | None = None

    def client_conf(self) -> dict[str, str]:
        if self.basic_auth_user_info is None:
            return {}
        return {"basic.auth.user.info": self.basic_auth_user_info.get_secret_value()}


class ClickHouseSettings(_Section):
    """Store DSN: ``chdb://PATH`` for the embedded engine (default), ``http(s)://`` for a server."""

    dsn: str = Field(default_factory=lambda: f"chdb://{data_dir() / 'clickhouse'}")
    database: str = Field(default="auditline", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    cluster: str | None = Field(
        default=None, description="ON CLUSTER name: migrations then create Replicated tables."
    )

    @field_validator("dsn")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"chdb", "http", "https", "clickhouse", "clickhouses"}:
            raise ValueError(
                f"unsupported DSN scheme {scheme or '(none)'!r}: use chdb://PATH or http(s)://HOST"
            )
        return value


class ProducerSettings(_Section):
    """Who emits (envelope ``producer``), how events are signed, and which transport carries them.

    ``instance`` must be stable across restarts of the same process slot (pod name, host name):
    the sequence and hash chain of each stream resume from the spool kept under that name.
    """

    service: str = Field(default="unnamed-service", min_length=1)
    instance: str = Field(default_factory=lambda: socket.gethostname() or "local", min_length=1)
    country: str = Field(default="ZZ", pattern=r"^[A-Z]{2}$", description="ISO code; ZZ=unknown")
    provider: str | None = None
    region: str | None = None
    transport: Literal["kafka", "memory"] = "kafka"
    signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key (hex) for closed deployments: whoever verifies can sign too.",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM, `auditline keys generate`): verifiers need only "
        "the public key in their keyring.",
    )
    signing_key_id: str = "default"
    require_signing: bool = False
    checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between signed stream checkpoints (head sequence and hash of every "
        "stream); one more on close. Verification reports a stream silent for twice as long.",
    )


class SpoolSettings(_Section):
    """The on-disk write-ahead spool every event passes through before it is sent."""

    path: Path = Field(
        default_factory=lambda: data_dir() / "spool",
        description="Per-user data directory unless set (`auditline config` shows it).",
    )
    max_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    segment_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_ms: int = Field(default=200, ge=0)
    on_full: Literal["block", "raise"] = "block"
    emit_timeout_ms: int = Field(
        default=5000, ge=0, description="Longest emit() blocks on a full spool before raising."
    )


class SinkSettings(_Section):
    """The Kafka → ClickHouse sink."""

    group_id: str = "auditline-sink"
    instance_id: str = Field(
        default_factory=lambda: f"sink-{socket.gethostname() or 'local'}",
        description="Static group membership: a restarted sink takes its partitions back at once.",
    )
    batch_max_events: int = Field(default=5000, gt=0)
    batch_max_wait_ms: int = Field(default=500, ge=0)
    checkpoint_key: SecretStr | None = Field(
        default=None, description="HMAC key (hex) signing verified chain checkpoints."
    )


class MetricsSettings(_Section):
    """Prometheus ``/metrics`` with ``/healthz`` and ``/readyz`` of long-running processes."""

    host: str = "127.0.0.1"
    port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve when set (`auditline sink`)."
    )


class OpenLineageSettings(_Section):
    """OpenLineage ingestion (`auditline openlineage serve|consume|import`), docs/openlineage.md."""

    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=0, le=65535, description="HTTP port (Marquez's is 5000).")
    api_key: SecretStr | None = Field(
        default=None, description="When set, requests need `Authorization: Bearer <api_key>`."
    )
    topic: str | None = Field(
        default=None,
        description="Topic of OpenLineage JSON (the KafkaTransport's); unset: "
        "`<topic_prefix>.openlineage.in`.",
    )
    group_id: str = "auditline-openlineage"
    inventory_path: Path | None = Field(
        default=None, description="Location inventory YAML: dataset patterns → where they are."
    )
    training_jobs: dict[str, str] = Field(
        default_factory=dict,
        description="Job `namespace/name` globs → the model a matching job trains.",
    )
    default_purpose: str = Field(default="unspecified", min_length=1)
    max_event_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    original_limit_bytes: int = Field(
        default=256 * 1024, ge=0, description="An event's text is kept as evidence up to this."
    )


class ConsoleSettings(_Section):
    """The auditor's console (`auditline console`), docs/console.md."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535, description="HTTP port (0: any free one).")
    token: SecretStr | None = Field(
        default=None,
        description="When set, every page and API call needs it: `Authorization: Bearer "
        "<token>`, or open `/?token=<token>` once (it is kept in a same-site cookie).",
    )
    poll_ms: int = Field(
        default=1000, ge=100, le=60_000, description="How often live alerts are read."
    )


class AuditlineSettings(BaseSettings):
    """Everything auditline reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    schema_registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    openlineage: OpenLineageSettings = Field(default_factory=OpenLineageSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    keyring_path: Path | None = Field(
        default=None,
        description="Public keys (JSON, `auditline keys generate`) that verify Ed25519 "
        "signatures of events and checkpoints.",
    )
    policy_path: Path | None = Field(
        default=None, description="Policy YAML; unset means the default pack shipped in the wheel."
    )
    drift_path: Path | None = Field(
        default=None,
        description="Drift thresholds YAML (defaults: and per-model overrides under models:); "
        "unset means the defaults in docs/drift.md.",
    )
    performance_path: Path | None = Field(
        default=None,
        description="Model-quality settings YAML (windows, join horizon, tolerances; defaults: "
        "and per-model overrides under models:); unset means the defaults in docs/performance.md.",
    )
    topic_prefix: str = Field(default="auditline", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    max_message_bytes: int = Field(default=8 * 1024 * 1024, gt=0)


def redacted_dsn(dsn: str) -> str:
    """The DSN with its password (``user:password@``) shown as ``***``: for logs and output."""
    scheme, sep, rest = dsn.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return dsn
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def load_settings(**overrides: Any) -> AuditlineSettings:
    """Settings from the environment (and overrides), or a ``ConfigError`` saying what to fix."""
    unknown = unknown_env_keys(os.environ)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}: check the spelling against "
            "`auditline config --help`, or unset them"
        )
    try:
        return AuditlineSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    except SettingsError as exc:  # e.g. AUDITLINE_KAFKA__EXTRA that is not a JSON object
        raise ConfigError(f"{exc}: complex settings take JSON, e.g. {_EXAMPLE_EXTRA}") from exc


_EXAMPLE_EXTRA = """AUDITLINE_KAFKA__EXTRA='{"client.rack": "eu1"}'"""


def unknown_env_keys(environ: Mapping[str, str]) -> list[str]:
    """``AUDITLINE_*`` variables that name no setting (nested sections checked too)."""
    unknown = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(RESERVED_PREFIXES):
            continue
        if not _names_field(AuditlineSettings, upper[len(ENV_PREFIX) :].lower().split("__")):
            unknown.append(name)
    return sorted(unknown)


def _names_field(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    annotation = field.annotation
    return (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and _names_field(annotation, path[1:])
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        env = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
        parts.append(f"{where} ({env}): {error['msg']}")
    return "invalid settings: " + "; ".join(parts)
