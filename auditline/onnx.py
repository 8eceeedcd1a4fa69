"""``AuditedModel``: ONNX Runtime inference that records its own predictions.

Needs the ``onnx`` extra (onnxruntime, numpy), imported when a model is opened. Every call runs
the model and records it through an ``AuditProducer``, with the model file's SHA-256 as the
artefact digest: batch calls emit one ``PredictionBatch``; single calls are gathered into
``PredictionBatch`` events of up to ``batch`` predictions or ``batch_ms`` milliseconds
(``auditline.producer.predictions``), or with ``batch=1`` emit one ``Prediction`` each. A sampling
rate below 1 records that share of predictions (chosen at random per prediction) and says so in
the event.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from auditline.errors import ConfigError
from auditline.events import GIVEN, Location, Prediction, PredictionBatch
from auditline.producer.helpers import file_digest

if TYPE_CHECKING:
    import numpy as np

    from auditline.producer import AuditProducer


def _runtime() -> tuple[Any, Any]:
    try:
        import numpy
        import onnxruntime
    except ImportError as exc:
        raise ConfigError("AuditedModel needs onnxruntime: pip install 'auditline[onnx]'") from exc
    return onnxruntime, numpy


class AuditedModel:
    """An ONNX model whose predictions are audit events."""

    def __init__(
        self,
        path: str | Path,
        *,
        producer: AuditProducer,
        model: str,
        version: str,
        location: Location | Mapping[str, Any],
        feature_names: Sequence[str] | None = None,
        sample_rate: float = 1.0,
        seed: int | None = None,
        batch: int = 1000,
        batch_ms: float = 200.0,
    ) -> None:
        if not 0 < sample_rate <= 1:
            raise ConfigError(f"sample_rate must be in (0, 1], got {sample_rate}")
        if batch < 1 or batch_ms <= 0:
            raise ConfigError(f"batch must be at least 1 and batch_ms above 0, got {batch}, "
                              f"{batch_ms}")  # fmt: skip
        ort, self._np = _runtime()
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self._outputs = [output.name for output in self.session.get_outputs()]  # all, as None
        first_input = self.session.get_inputs()[0]
        self.input_name = first_input.name
        width = first_input.shape[-1] if isinstance(first_input.shape[-1], int) else None
        self.feature_names = list(feature_names or [f"f{i}" for i in range(width or 0)])
        if not self.feature_names:
            raise ConfigError(f"{path}: input width is dynamic; pass feature_names")
        self._names = tuple(self.feature_names)  # the same tuple each call: the buffer's fast way
        self.producer = producer
        self.model, self.version = model, version
        self.location = (
            location
            if isinstance(location, Location)
            else Location.model_validate(location, context=GIVEN)
        )
        self.sample_rate = sample_rate
        self.digest = file_digest(path)
        self._rng = random.Random(seed)
        self._buffer = None if batch == 1 else producer.prediction_buffer(
            model_name=model, model_version=version, location=self.location,
            artifact_digest=self.digest, sample_rate=sample_rate, max_count=batch,
            max_delay_ms=batch_ms,
        )  # fmt: skip

    def flush(self) -> None:
        """Emit the single predictions gathered so far (``AuditProducer.flush`` does it too)."""
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> bool:
        """Emit the gathered predictions and stop gathering (the producer's ``close`` does it
        too); a model replaced on a live producer should be closed. True when all was written."""
        return self._buffer.close() if self._buffer is not None else True

    def __enter__(self) -> AuditedModel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def predict(
        self,
        features: Sequence[float] | Mapping[str, float],
        *,
        subject_jurisdiction: str | None = None,
        categorical: Mapping[str, str] | None = None,
        prediction_id: str | None = None,
    ) -> np.ndarray:
        """Run one row; emit a Prediction (if sampled); return the model's first output row.

        The row's values are recorded in the order of ``feature_names`` (``record_values``), so
        that recording costs a few µs beside onnxruntime's own run (about 5 µs for a small
        model on a 2-core VM). With ``prediction_id`` (the id an ``Outcome`` will name, for
        model quality: docs/performance.md) the prediction is emitted at once as its own
        ``Prediction`` event with that id, not gathered into a batch."""
        row = self._row(features)
        start = time.perf_counter()
        outputs = self.session.run(self._outputs, {self.input_name: row})
        latency_ms = (time.perf_counter() - start) * 1000
        if self.sample_rate == 1 or self._rng.random() < self.sample_rate:
            score, label = self._first(outputs)
            values = row.tolist()[0]
            if self._buffer is not None and prediction_id is None:
                self._buffer.record_values(
                    self._names, values, score=score, label=label,
                    subject_jurisdiction=subject_jurisdiction,
                    categorical_features=dict(categorical) if categorical else None,
                    latency_ms=latency_ms,
                )  # fmt: skip
            else:
                self.producer.emit(
                    Prediction, prediction_id=prediction_id or uuid4().hex, model_name=self.model,
                    model_version=self.version, location=self.location,
                    artifact_digest=self.digest, score=score, label=label,
                    numeric_features=dict(zip(self.feature_names, values, strict=True)),
                    subject_jurisdiction=subject_jurisdiction,
                    categorical_features=dict(categorical or {}), latency_ms=latency_ms,
                )  # fmt: skip
        result: np.ndarray = outputs[0][0]
        return result

    def predict_batch(
        self,
        rows: Any,
        *,
        subject_jurisdictions: Sequence[str | None] | None = None,
        batch_id: str | None = None,
    ) -> np.ndarray:
        """Run a batch; emit one PredictionBatch of the sampled rows; return the first output.

        ``batch_id``: the batch's id (a new one by default), which an ``Outcome`` names with a
        row number (docs/performance.md); rows are numbered as emitted, so with a
        ``sample_rate`` below 1 only the sampled rows are, in their order."""
        numpy = self._np
        matrix = numpy.asarray(rows, dtype=numpy.float32)
        start = time.perf_counter()
        outputs = self.session.run(None, {self.input_name: matrix})
        latency_ms = (time.perf_counter() - start) * 1000
        keep = [i for i in range(len(matrix)) if self._rng.random() < self.sample_rate]
        if keep:
            scores, labels = self._interpret(outputs)
            columns = matrix[keep].T.tolist()
            self.producer.emit(
                PredictionBatch, batch_id=batch_id or uuid4().hex, model_name=self.model,
                model_version=self.version, location=self.location, count=len(keep),
                sample_rate=self.sample_rate,
                subject_jurisdictions=[subject_jurisdictions[i] for i in keep]
                if subject_jurisdictions else [],
                numeric_features=[
                    {"name": name, "values": values}
                    for name, values in zip(self.feature_names, columns, strict=True)
                ],
                scores=[scores[i] for i in keep] if scores else [],
                labels=[labels[i] for i in keep] if labels else [],
                latency_ms=latency_ms, artifact_digest=self.digest,
            )  # fmt: skip
        result: np.ndarray = outputs[0]
        return result

    def _row(self, features: Sequence[float] | Mapping[str, float]) -> np.ndarray:
        """The model's input: one row of float32 values, as a matrix of one row."""
        numpy = self._np
        if type(features) is dict or isinstance(features, Mapping):
            features = self._ordered(features)
        row: np.ndarray = numpy.array([features], dtype=numpy.float32)
        if row.shape[1:] != (len(self.feature_names),):
            raise ConfigError(
                f"expected {len(self.feature_names)} features, got shape {row.shape[1:]}"
            )
        return row

    def _ordered(self, features: Mapping[str, float]) -> list[float]:
        """The values in the order of ``feature_names``; ``ConfigError`` names those missing."""
        if type(features) is dict:  # a plain dict misses exactly the names that raise KeyError
            with suppress(KeyError):
                return list(map(features.__getitem__, self.feature_names))
        missing = [name for name in self.feature_names if name not in features]
        if missing:
            raise ConfigError(f"features missing for {self.model}: {missing}")
        return [features[name] for name in self.feature_names]

    def _first(self, outputs: list[Any]) -> tuple[float | None, str | None]:
        """The first row's score and label, as ``_interpret`` reads them for every row."""
        numpy = self._np
        score: float | None = None
        label: str | None = None
        for output in outputs:
            array = numpy.asarray(output)
            if array.dtype.kind in "OSUi" and array.ndim == 1 and label is None:
                label = str(array[:1].tolist()[0]) if len(array) else None
            elif array.dtype.kind == "f" and score is None:
                flat = array.reshape(len(array), -1)
                width = flat.shape[1]  # the first row's [1] of two, else its maximum
                score = float(flat.item(1) if width == 2 else flat.item(0) if width == 1 else
                              flat[0].max())  # fmt: skip
        return score, label

    def _interpret(self, outputs: list[Any]) -> tuple[list[float], list[str]]:
        """Scores and labels per row from the model outputs (regressors, classifiers)."""
        numpy = self._np
        scores: list[float] = []
        labels: list[str] = []
        for output in outputs:
            array = numpy.asarray(output)
            if array.dtype.kind in "OSUi" and array.ndim == 1 and not labels:
                labels = [str(v) for v in array.tolist()]
            elif array.dtype.kind == "f" and not scores:
                flat = array.reshape(len(array), -1)
                column = flat[:, 1] if flat.shape[1] == 2 else flat.max(axis=1)
                scores = [float(v) for v in column]
        return scores, labels
