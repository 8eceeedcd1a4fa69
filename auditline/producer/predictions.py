"""Single predictions recorded as ``PredictionBatch`` events (micro-batching in the SDK).

A service that predicts one row at a time should not pay an event (validation, sealing, a spool
write, a Kafka record, a worker's decode) per prediction. ``PredictionBuffer.record`` appends the
prediction to a buffer in memory (a few µs) and one ``PredictionBatch`` is emitted when
``max_count`` predictions are buffered, when the oldest has waited ``max_delay_ms`` (a
background thread), when the producer is flushed or closed, or by ``flush()``. The batch keeps
each prediction's features, score, label and subject jurisdiction in columns, in the order
recorded; its event time is the first prediction's, its ``latency_ms`` the mean of theirs.

Guarantee: a recorded prediction is in the spool (and so survives the process) once its batch is
emitted: within ``max_delay_ms``, or when ``flush()``/``close()`` returns. A process killed
before that loses at most the buffered predictions; use ``max_count=1`` (one ``Prediction`` event
per call, written at once) where each prediction must be durable before the call returns. A
batch that cannot be emitted (a full spool) stays buffered and is tried again; ``record`` raises
that error once twice ``max_count`` predictions wait, so memory stays bounded and nothing is
dropped silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import uuid4

from auditline.errors import EmitError
from auditline.events import Location, PredictionBatch

if TYPE_CHECKING:
    from auditline.producer.core import AuditProducer, Receipt

log = logging.getLogger(__name__)


class _Row(NamedTuple):
    numeric: Mapping[str, float | None]
    categorical: Mapping[str, str | None]
    score: float | None
    label: str | None
    subject: str | None
    latency_ms: float
    at: float  # wall time (s)


class PredictionBuffer:
    """Predictions of one model version, emitted as ``PredictionBatch`` events (thread-safe)."""

    def __init__(
        self,
        producer: AuditProducer,
        *,
        model_name: str,
        model_version: str,
        location: Location | Mapping[str, Any],
        artifact_digest: str | None = None,
        sample_rate: float = 1.0,
        max_count: int = 1000,
        max_delay_ms: float = 200.0,
    ) -> None:
        if max_count < 1 or max_delay_ms <= 0:
            raise ValueError("max_count must be at least 1 and max_delay_ms above 0")
        self.producer = producer
        self.fixed = {
            "model_name": model_name, "model_version": model_version,
            "location": location if isinstance(location, Location) else Location(**location),
            "artifact_digest": artifact_digest, "sample_rate": sample_rate,
        }  # fmt: skip
        self.max_count, self.max_delay_s = max_count, max_delay_ms / 1000
        self._rows: list[_Row] = []
        self._since = 0.0  # monotonic time of the oldest buffered prediction
        self._failure: EmitError | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._timer = threading.Thread(target=self._run, name="auditline-predictions", daemon=True)
        self._timer.start()

    def record(
        self,
        numeric_features: Mapping[str, float | None],
        *,
        score: float | None = None,
        label: str | None = None,
        subject_jurisdiction: str | None = None,
        categorical_features: Mapping[str, str | None] | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        """Buffer one prediction (emitted with its batch, see the module doc)."""
        row = _Row(numeric_features, categorical_features or {}, score, label,
                   subject_jurisdiction, latency_ms, time.time())  # fmt: skip
        full: list[_Row] = []
        with self._cond:
            if self._closed:
                raise EmitError("the prediction buffer is closed")
            if self._failure is not None and len(self._rows) >= 2 * self.max_count:
                raise self._failure
            if self._rows and _shape(self._rows[-1]) != _shape(row):
                full = self._take()  # scores or labels present in some rows only: a new batch
            if not self._rows:
                self._since = time.monotonic()
                self._cond.notify()
            self._rows.append(row)
            if len(self._rows) >= self.max_count:
                full += self._take()
        if full:
            self._emit(full)

    def flush(self) -> list[Receipt]:
        """Emit what is buffered now (raises what the producer raises; nothing is lost)."""
        with self._cond:
            rows = self._take()
        return self._emit(rows, background=False)

    def close(self) -> None:
        """Emit what is buffered and stop the timer; later ``record`` calls raise."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._timer.join(5)
        self.flush()

    @property
    def buffered(self) -> int:
        with self._cond:
            return len(self._rows)

    # -- emission ---------------------------------------------------------------------------

    def _take(self) -> list[_Row]:
        rows, self._rows = self._rows, []
        return rows

    def _run(self) -> None:
        """Emit a batch whose oldest prediction has waited ``max_delay_ms``."""
        while True:
            with self._cond:
                while not self._rows and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                due = self._since + self.max_delay_s - time.monotonic()
                if due > 0:
                    self._cond.wait(due)
                    continue
                rows = self._take()
            self._emit(rows)

    def _emit(self, rows: list[_Row], *, background: bool = True) -> list[Receipt]:
        receipts: list[Receipt] = []
        for start in range(0, len(rows), self.max_count):
            chunk = rows[start : start + self.max_count]
            try:
                receipts += self.producer.emit_many(
                    PredictionBatch, [self._body(chunk)],
                    event_time=datetime.fromtimestamp(chunk[0].at, UTC),
                )  # fmt: skip
                self._failure = None
            except EmitError as exc:
                self._keep(rows[start:], exc)
                if not background:
                    raise
                log.error("predictions of %s kept to retry: %s", self.fixed["model_name"], exc)
                break
        return receipts

    def _keep(self, rows: list[_Row], exc: EmitError) -> None:
        with self._cond:
            self._rows = rows + self._rows
            self._since = time.monotonic()
            self._failure = exc

    def _body(self, rows: list[_Row]) -> dict[str, Any]:
        numeric = list(dict.fromkeys(name for row in rows for name in row.numeric))
        categorical = list(dict.fromkeys(name for row in rows for name in row.categorical))
        first = rows[0]
        return {
            **self.fixed, "batch_id": uuid4().hex, "count": len(rows),
            "numeric_features": [
                {"name": n, "values": [r.numeric.get(n) for r in rows]} for n in numeric
            ],
            "categorical_features": [
                {"name": n, "values": [r.categorical.get(n) for r in rows]} for n in categorical
            ],
            "scores": [r.score for r in rows] if first.score is not None else [],
            "labels": [r.label for r in rows] if first.label is not None else [],
            "subject_jurisdictions": (
                [r.subject for r in rows] if any(r.subject for r in rows) else []
            ),
            "latency_ms": sum(r.latency_ms for r in rows) / len(rows),
        }  # fmt: skip


def _shape(row: _Row) -> tuple[bool, bool]:
    return row.score is None, row.label is None
