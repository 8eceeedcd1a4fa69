"""The one catalogue: event model ⇄ Avro schema ⇄ topic ⇄ partition key.

Partition key (ordering decided here): every event is keyed by its envelope's producer ``stream``.
All events of one producer stream therefore land on one partition of their topic, in the order
the producer sent them, so that sequence gaps, duplicates, reordering and hash-chain breaks are
decidable from one partition alone, without a cross-partition merge. Consumers that need other
groupings (per asset, per model version) build them from state, not from partitioning: an
``Outcome`` is keyed like the predictions it follows (by its stream), and the worker brings an
outcome and its prediction together by model version, as drift's partial counts are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from auditline.contracts import CONTRACTS_VERSION, LAYOUTS, AvroSchema, bundled_schema
from auditline.errors import UnknownSchemaError
from auditline.events import (
    AssetDeclared,
    DataMovement,
    DataQualityAlert,
    DriftAlert,
    Event,
    IntegrityAlert,
    ModelDeployed,
    OpenLineageEvent,
    Outcome,
    PerformanceAlert,
    PolicyViolation,
    Prediction,
    PredictionBatch,
    StreamCheckpoint,
    TrainingRun,
)

KeyFunction = Callable[[Event], bytes]


def stream_key(event: Event) -> bytes:
    """Partition key: the producer stream (see the module docstring for the order it preserves)."""
    return event.envelope.stream.encode()


# model, topic suffix: the whole contract of which event goes where.
_ROUTES: tuple[tuple[type[Event], str], ...] = (
    (AssetDeclared, "assets"),
    (DataMovement, "movements"),
    (TrainingRun, "training"),
    (ModelDeployed, "deployments"),
    (Prediction, "predictions"),
    (PredictionBatch, "predictions"),
    (Outcome, "outcomes"),
    (StreamCheckpoint, "checkpoints"),
    (OpenLineageEvent, "openlineage"),
    (PolicyViolation, "alerts.violations"),
    (DriftAlert, "alerts.drift"),
    (DataQualityAlert, "alerts.quality"),
    (PerformanceAlert, "alerts.performance"),
    (IntegrityAlert, "alerts.integrity"),
)
DEAD_LETTER_SUFFIX = "deadletter"


@dataclass(frozen=True)
class CatalogueEntry:
    model: type[Event]
    schema: AvroSchema
    topic: str
    key: KeyFunction = stream_key

    def schema_in(self, version: int) -> AvroSchema:
        """The schema in contracts layout ``version`` (``Envelope.schema_version``)."""
        return (
            self.schema
            if version == CONTRACTS_VERSION
            else bundled_schema(self.schema.name, version)
        )


@dataclass(frozen=True)
class Catalogue:
    """All event kinds with their schema, topic and key; topics share ``topic_prefix``."""

    topic_prefix: str = "auditline"
    entries: tuple[CatalogueEntry, ...] = field(init=False)

    def __post_init__(self) -> None:
        entries = tuple(
            CatalogueEntry(model, bundled_schema(model.SCHEMA), f"{self.topic_prefix}.{suffix}")
            for model, suffix in _ROUTES
        )
        object.__setattr__(self, "entries", entries)

    def __iter__(self) -> Iterator[CatalogueEntry]:
        return iter(self.entries)

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}.{DEAD_LETTER_SUFFIX}"

    @property
    def topics(self) -> tuple[str, ...]:
        """Every event topic, in catalogue order, without repeats."""
        return tuple(dict.fromkeys(entry.topic for entry in self.entries))

    def for_model(self, model: type[Event]) -> CatalogueEntry:
        try:
            return self._by_model[model]
        except KeyError:
            raise UnknownSchemaError(f"{model.__name__} is not in the catalogue") from None

    def for_name(self, schema_name: str) -> CatalogueEntry:
        try:
            return self._by_name[schema_name]
        except KeyError:
            raise UnknownSchemaError(
                f"schema {schema_name!r} is not in the catalogue: upgrade auditline to read it"
            ) from None

    def for_fingerprint(self, fingerprint: bytes) -> tuple[CatalogueEntry, AvroSchema]:
        """The entry whose schema, in any contracts layout this version reads, has this
        fingerprint, and that writer schema."""
        try:
            return self._by_fingerprint[fingerprint]
        except KeyError:
            raise UnknownSchemaError(
                f"no bundled schema has fingerprint {fingerprint.hex()}: the writer used a schema "
                "this version of auditline does not ship (upgrade, or configure a schema registry)"
            ) from None

    @cached_property
    def _by_model(self) -> dict[type[Event], CatalogueEntry]:
        return {entry.model: entry for entry in self.entries}

    @cached_property
    def _by_name(self) -> dict[str, CatalogueEntry]:
        return {entry.schema.name: entry for entry in self.entries}

    @cached_property
    def _by_fingerprint(self) -> dict[bytes, tuple[CatalogueEntry, AvroSchema]]:
        return {
            schema.fingerprint: (entry, schema)
            for entry in self.entries
            for schema in (entry.schema_in(version) for version in LAYOUTS)
        }
