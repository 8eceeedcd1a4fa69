"""Synthetic predictions and their outcomes, for the model-quality tests and
bench/performance.py: a binary scorer whose accuracy is chosen per window, outcomes known a
random delay later. Events are built with ``model_construct`` (already valid by construction:
a million of them validate slowly), their envelopes unsent (no place in a hash chain)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np

from auditline.events import (
    Envelope,
    Location,
    Outcome,
    Prediction,
    PredictionBatch,
    ProducerInfo,
    RunStatus,
    TrainingRun,
    unsent_envelope,
)

T0 = datetime(2026, 11, 2, tzinfo=UTC)
PRODUCER = ProducerInfo(service="serving", instance="s1", location=Location(country="DE"))
HERE = Location(country="DE")


def envelope(when: datetime, stream: str = "serving/s1/predictions", sequence: int = 0) -> Envelope:
    fields = unsent_envelope(str(uuid4()), when, service="serving", instance="s1",
                             stream=stream, sequence=sequence)  # fmt: skip
    return Envelope.model_validate(fields)


def training_run(metrics: dict[str, float], model: str = "m", version: str = "1") -> TrainingRun:
    return TrainingRun(
        envelope=envelope(T0 - timedelta(days=1), "training/t1/training"), run_id="run-1",
        status=RunStatus.COMPLETED, model_name=model, model_version=version, code_version="c1",
        location=HERE, purpose="test", metrics=metrics,
    )  # fmt: skip


def batch(
    batch_id: str, when: datetime, scores: Sequence[float], labels: Sequence[str] = ()
) -> PredictionBatch:
    return PredictionBatch.model_construct(
        envelope=envelope(when), batch_id=batch_id, model_name="m", model_version="1",
        location=HERE, count=len(scores), sample_rate=1.0, subject_jurisdictions=(),
        numeric_features=(), categorical_features=(), scores=tuple(scores), labels=tuple(labels),
        latency_ms=1.0, artifact_digest=None,
    )  # fmt: skip


def single(
    prediction_id: str, when: datetime, score: float | None = None, label: str | None = None
) -> Prediction:
    return Prediction.model_construct(
        envelope=envelope(when), prediction_id=prediction_id, model_name="m", model_version="1",
        location=HERE, subject_jurisdiction=None, numeric_features={}, categorical_features={},
        score=score, label=label, latency_ms=1.0, artifact_digest=None,
    )  # fmt: skip


def outcome(
    when: datetime,
    *,
    prediction_id: str | None = None,
    batch_id: str | None = None,
    row: int | None = None,
    label: str | None = None,
    value: float | None = None,
    shared: Envelope | None = None,
) -> Outcome:
    """An outcome; ``shared``: an envelope to reuse (the bench's, to save memory)."""
    return Outcome.model_construct(
        envelope=shared or envelope(when, "labels/l1/outcomes"), model_name="m",
        model_version="1", prediction_id=prediction_id, batch_id=batch_id, row=row,
        label=label, value=value,
    )  # fmt: skip


@dataclass(frozen=True)
class Scored:
    """A window's binary predictions: scores, the true labels ("1"/"0"), outcome delays."""

    scores: np.ndarray
    truth: np.ndarray  # bool
    delays_s: np.ndarray


def scored(rng: np.random.Generator, size: int, accuracy: float, delay_s: float) -> Scored:
    """Scores of which ``accuracy`` fall on the right side of 0.5, delays exponential."""
    truth = rng.random(size) < 0.5
    right = rng.random(size) < accuracy
    margin = rng.uniform(0.0, 0.5, size)
    says_positive = truth == right
    scores = np.where(says_positive, 0.5 + margin, 0.5 - margin).clip(0.0, 1.0)
    scores = np.where(says_positive & (scores < 0.5), 0.5, scores)
    return Scored(scores, truth, rng.exponential(delay_s, size))


def stream(
    rng: np.random.Generator,
    accuracies: Sequence[float],
    *,
    batches: int = 5,
    rows: int = 200,
    window_s: int = 3600,
    delay_s: float = 600.0,
) -> Iterator[PredictionBatch | Outcome]:
    """Per window, ``batches`` batches of ``rows`` predictions at the given accuracy, each
    followed by its outcomes (in time order within the batch)."""
    for w, accuracy in enumerate(accuracies):
        for b in range(batches):
            when = T0 + timedelta(seconds=w * window_s + b * window_s / batches)
            s = scored(rng, rows, accuracy, delay_s)
            batch_id = f"w{w}b{b}"
            yield batch(batch_id, when, s.scores.tolist())
            for row in np.argsort(s.delays_s):
                yield outcome(
                    when + timedelta(seconds=float(s.delays_s[row])), batch_id=batch_id,
                    row=int(row), label="1" if s.truth[row] else "0",
                )  # fmt: skip
