"""Prediction events: one at a time, or columnar batches for volume; their outcomes, known later."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from auditline.events.records import CategoricalColumn, Event, Location, NumericColumn
from auditline.events.types import HexDigest, Jurisdiction, NonEmpty


class Prediction(Event):
    SCHEMA: ClassVar[str] = "auditline.events.Prediction"
    prediction_id: NonEmpty
    model_name: NonEmpty
    model_version: NonEmpty
    location: Location
    subject_jurisdiction: Jurisdiction | None = None
    numeric_features: dict[str, float | None] = Field(default_factory=dict)
    categorical_features: dict[str, str | None] = Field(default_factory=dict)
    score: float | None = None
    label: str | None = None
    latency_ms: float = Field(ge=0)
    artifact_digest: HexDigest | None = None


class PredictionBatch(Event):
    SCHEMA: ClassVar[str] = "auditline.events.PredictionBatch"
    batch_id: NonEmpty
    model_name: NonEmpty
    model_version: NonEmpty
    location: Location
    count: int = Field(ge=0, le=2**31 - 1)
    sample_rate: float = Field(default=1.0, gt=0, le=1)
    subject_jurisdictions: tuple[Jurisdiction | None, ...] = ()
    numeric_features: tuple[NumericColumn, ...] = ()
    categorical_features: tuple[CategoricalColumn, ...] = ()
    scores: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    latency_ms: float = Field(ge=0)
    artifact_digest: HexDigest | None = None

    @model_validator(mode="after")
    def _columns_match_count(self) -> PredictionBatch:
        self.check_columns()
        return self

    def check_columns(self) -> None:
        """Each column holds ``count`` values or none (``ValueError`` otherwise)."""
        sizes = [
            ("subject_jurisdictions", len(self.subject_jurisdictions)),
            ("scores", len(self.scores)),
            ("labels", len(self.labels)),
            *((f"numeric_features[{c.name}]", len(c.values)) for c in self.numeric_features),
            *(
                (f"categorical_features[{c.name}]", len(c.values))
                for c in self.categorical_features
            ),
        ]  # a list: two columns of one name are both checked
        for name, size in sizes:
            if size not in (0, self.count):
                raise ValueError(f"{name} has {size} values, expected count={self.count} (or 0)")


class Outcome(Event):
    """The ground truth of one earlier prediction: a single ``Prediction`` (``prediction_id``)
    or a row of a ``PredictionBatch`` (``batch_id`` and ``row``), with its true ``label``
    (classification) or ``value`` (regression). The envelope's ``event_time`` is when the
    outcome became known (``auditline.performance`` joins it to its prediction)."""

    SCHEMA: ClassVar[str] = "auditline.events.Outcome"
    model_name: NonEmpty
    model_version: NonEmpty
    prediction_id: NonEmpty | None = None
    batch_id: NonEmpty | None = None
    row: int | None = Field(default=None, ge=0, le=2**31 - 1)
    label: str | None = None
    value: float | None = None

    @model_validator(mode="after")
    def _one_prediction_and_a_truth(self) -> Outcome:
        in_batch = self.batch_id is not None or self.row is not None
        if (self.prediction_id is None) == (not in_batch):
            raise ValueError("name exactly one prediction: prediction_id, or batch_id with row")
        if in_batch and (self.batch_id is None or self.row is None):
            raise ValueError("a batch row needs both batch_id and row")
        if self.label is None and self.value is None:
            raise ValueError("an outcome needs its label or its value (or both)")
        return self
