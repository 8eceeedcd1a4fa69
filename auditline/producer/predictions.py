"""Single predictions recorded as ``PredictionBatch`` events (micro-batching in the SDK).

A service that predicts one row at a time should not pay an event (validation, sealing, a spool
write, a Kafka record, a worker's decode) per prediction. ``PredictionBuffer.record`` checks the
prediction, copies it into a buffer in memory (a few µs) and one ``PredictionBatch`` is emitted
when ``max_count`` predictions (or about ``max_bytes`` of columns) are buffered, when the oldest
has waited ``max_delay_ms`` (a background thread), when the producer is flushed or closed, or by
``flush()``. The batch keeps each prediction's features, score, label and subject jurisdiction in
columns, in the order recorded; its event time is the first prediction's, its ``latency_ms`` the
sum of theirs (the batch's inference time, as for ``predict_batch``).

Guarantee: a recorded prediction is in the spool (and so survives the process) once its batch is
emitted: within ``max_delay_ms``, or when ``flush()``/``close()`` returns. A process killed
before that loses at most the buffered predictions; use ``max_count=1`` (one ``Prediction`` event
per call, written at once) where each prediction must be durable before the call returns.
Batches are emitted one at a time, in recording order. A batch that cannot be emitted (a full
spool) stays buffered; the timer tries again every second and ``record`` only buffers until twice
``max_count`` predictions wait, then raises the spool's error, so memory stays bounded and nothing
is dropped silently. At ``close`` what still cannot be written is logged with its count.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from itertools import groupby, repeat
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import uuid4

from auditline.errors import EmitError, InvalidEventError
from auditline.events import GIVEN, Location, PredictionBatch

if TYPE_CHECKING:
    from auditline.producer.core import AuditProducer, Receipt

log = logging.getLogger(__name__)
JURISDICTION = re.compile(r"[A-Z][A-Z0-9_-]{1,15}")  # auditline.events.types.Jurisdiction
RETRY_S = 1.0  # the timer's pause between attempts while the spool refuses a batch
DEFAULT_MAX_BYTES = 512 * 1024  # columns per batch, well below Kafka's 1 MB message limit
_FLOAT_OR_NONE = {float, type(None)}
_STR_OR_NONE = {str, type(None)}


class _Row(NamedTuple):
    numeric: dict[str, float | None]
    categorical: dict[str, str | None]
    score: float | None
    label: str | None
    subject: str | None
    latency_ms: float
    at: float  # wall time (s)
    size: int  # bytes it adds to a batch's columns, about


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
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_close: Callable[[PredictionBuffer], None] | None = None,
    ) -> None:
        if max_count < 1 or max_delay_ms <= 0 or max_bytes < 1:
            raise ValueError("max_count and max_bytes must be at least 1, max_delay_ms above 0")
        self.producer = producer
        self.fixed = {
            "model_name": model_name, "model_version": model_version,
            "location": location
            if isinstance(location, Location)
            else Location.model_validate(location, context=GIVEN),
            "artifact_digest": artifact_digest, "sample_rate": sample_rate,
        }  # fmt: skip
        producer.validate(PredictionBatch, {**self.fixed, "batch_id": "check", "count": 0,
                                             "latency_ms": 0.0})  # fmt: skip  # bad ones: now
        self.max_count, self.max_delay_s, self.max_bytes = max_count, max_delay_ms / 1000, max_bytes
        self._on_close = on_close
        self.rejected = 0  # rows the schema refused at emission (record() should have)
        self._rows: list[_Row] = []
        self._bytes = 0  # estimated column bytes of the buffered rows
        self._since = 0.0  # monotonic time of the oldest buffered prediction
        self._failure: EmitError | None = None  # the last attempt's error, while it fails
        self._closed = False
        self._cond = threading.Condition()
        self._emitting = threading.Lock()  # one batch at a time, in order
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
        """Check and buffer one prediction (emitted with its batch, see the module doc); an
        invalid one raises ``InvalidEventError`` here, to its caller."""
        row = _checked(numeric_features, categorical_features, score=score, label=label,
                       subject=subject_jurisdiction, latency_ms=latency_ms)  # fmt: skip
        with self._cond:
            if self._closed:
                raise EmitError("the prediction buffer is closed")
            if self._failure is not None and len(self._rows) >= 2 * self.max_count:
                failure = self._failure  # a new error of its kind (e.g. SpoolFullError) each time
                raise type(failure)(f"{len(self._rows)} predictions wait: {failure}")
            if not self._rows:
                self._since = time.monotonic()
                self._cond.notify()
            self._rows.append(row)
            self._bytes += row.size
            full = len(self._rows) >= self.max_count or self._bytes >= self.max_bytes
            if not full or self._failure is not None:
                return  # while the spool refuses, the timer retries: the caller is not held
        self._emit_buffered()

    def flush(self) -> list[Receipt]:
        """Emit what is buffered now, after any batch in flight; raises the producer's
        ``EmitError`` (the predictions stay buffered)."""
        return self._emit_buffered(raising=True)

    def close(self) -> bool:
        """Emit what is buffered and stop the timer; later ``record`` calls raise. True when all
        was written; what cannot be (the spool is full) is logged with its count."""
        with self._cond:
            closing = not self._closed
            self._closed = True
            self._cond.notify()
        self._timer.join()
        if not closing:  # closed by another caller: its last attempt first
            with self._emitting, self._cond:
                return not self._rows
        try:
            self.flush()
        except EmitError as exc:
            log.error("%d predictions of %s %s not written at close: %s", self.buffered,
                      self.fixed["model_name"], self.fixed["model_version"], exc)  # fmt: skip
            return False
        finally:
            if self._on_close is not None:
                self._on_close(self)
        return True

    @property
    def buffered(self) -> int:
        with self._cond:
            return len(self._rows)

    # -- emission ---------------------------------------------------------------------------

    def _run(self) -> None:
        """Emit a batch whose oldest prediction has waited ``max_delay_ms`` (or, after a failed
        attempt, every ``RETRY_S``); never ends but on ``close``."""
        while True:
            with self._cond:
                while not self._rows and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                pause = RETRY_S if self._failure is not None else self.max_delay_s
                due = self._since + pause - time.monotonic()
                if due > 0:
                    self._cond.wait(due)
                    continue
            try:
                self._emit_buffered()
            except Exception:
                log.exception("emitting the predictions of %s failed", self.fixed["model_name"])

    def _emit_buffered(self, *, raising: bool = False) -> list[Receipt]:
        """Take the buffered rows and emit them, one batch per run of rows of one shape and at
        most ``max_count`` rows; on failure the rows not written go back, ahead of newer ones."""
        receipts: list[Receipt] = []
        with self._emitting:
            with self._cond:
                rows, self._rows, self._bytes = self._rows, [], 0
            for start, chunk in _batches(rows, self.max_count, self.max_bytes):
                try:
                    receipts += self._emit_one(chunk)
                except Exception as exc:  # not spooled (emit_many raises only before that)
                    failure = exc if isinstance(exc, EmitError) else EmitError(str(exc))
                    self._keep(rows[start:], failure)
                    if raising:
                        raise failure from exc
                    log.error("predictions of %s kept to retry: %s", self.fixed["model_name"], exc)
                    return receipts
            with self._cond:
                self._failure = None
        return receipts

    def _emit_one(self, chunk: list[_Row]) -> list[Receipt]:
        try:
            return self.producer.emit_many(
                PredictionBatch, [self._body(chunk)],
                event_time=datetime.fromtimestamp(chunk[0].at, UTC),
            )  # fmt: skip
        except InvalidEventError:  # record() checks rows as the schema does: not expected
            if len(chunk) == 1:
                self.rejected += 1
                log.exception(
                    "a prediction of %s is invalid, not recorded", self.fixed["model_name"]
                )
                return []
            middle = len(chunk) // 2  # the bad rows found by halves, the others written
            return self._emit_one(chunk[:middle]) + self._emit_one(chunk[middle:])

    def _keep(self, rows: list[_Row], failure: EmitError) -> None:
        with self._cond:
            self._rows = rows + self._rows
            self._bytes = sum(row.size for row in self._rows)
            self._since = time.monotonic()
            self._failure = failure

    def _body(self, rows: list[_Row]) -> dict[str, Any]:
        """The batch's fields, its columns gathered with C-level maps (this runs per row)."""
        first = rows[0]
        numerics = [r.numeric for r in rows]
        categoricals = [r.categorical for r in rows]
        return {
            **self.fixed, "batch_id": uuid4().hex, "count": len(rows),
            "numeric_features": [
                {"name": n, "values": list(map(dict.get, numerics, repeat(n)))}
                for n in _names(numerics)
            ],
            "categorical_features": [
                {"name": n, "values": list(map(dict.get, categoricals, repeat(n)))}
                for n in _names(categoricals)
            ],
            "scores": [r.score for r in rows] if first.score is not None else [],
            "labels": [r.label for r in rows] if first.label is not None else [],
            "subject_jurisdictions": (
                [r.subject for r in rows] if any(r.subject for r in rows) else []
            ),
            "latency_ms": sum(r.latency_ms for r in rows),
        }  # fmt: skip


def _names(columns: list[dict[str, Any]]) -> list[str]:
    """Column names in order of first appearance (usually: the first row's, every row alike)."""
    names = list(columns[0])
    if set().union(*columns) - set(names):
        names = list(dict.fromkeys(name for column in columns for name in column))
    return names


def _checked(
    numeric: Mapping[str, float | None],
    categorical: Mapping[str, str | None] | None,
    *,
    score: float | None,
    label: str | None,
    subject: str | None,
    latency_ms: float,
) -> _Row:
    """A copy of the caller's values (they may reuse their dicts), checked as the batch's
    schema will check them, so that one bad prediction fails its own call, not a batch."""
    try:
        numbers = dict(numeric)
        categories = dict(categorical) if categorical else {}
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"features must be mappings of name to value: {exc}") from exc
    if not set(map(type, numbers)) | set(map(type, categories)) <= {str}:  # str subclasses too
        numbers, categories = _named(numbers), _named(categories)
    if "" in numbers or "" in categories:
        raise InvalidEventError("feature names must not be empty")
    try:
        if not set(map(type, numbers.values())) <= _FLOAT_OR_NONE:  # ints, numpy scalars
            numbers = {k: None if v is None else float(v) for k, v in numbers.items()}
        scored = None if score is None else float(score)
        spent = float(latency_ms)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidEventError(f"features, score and latency_ms must be numbers: {exc}") from exc
    if categories and not set(map(type, categories.values())) <= _STR_OR_NONE:
        categories = {k: _text(v, "categorical feature values") for k, v in categories.items()}
    label = _text(label, "label")
    if subject is not None and not (isinstance(subject, str) and JURISDICTION.fullmatch(subject)):
        raise InvalidEventError(
            f"subject_jurisdiction {subject!s} is no jurisdiction code (e.g. DE, EEA)",
            field="subject_jurisdiction",
        )
    if not spent >= 0:
        raise InvalidEventError(f"latency_ms must be 0 or more, got {spent}")
    text = sum(len(k) + len(v or "") + 2 for k, v in categories.items()) if categories else 0
    size = 9 * len(numbers) + text + len(label or "") + 24  # a double: 9 bytes with its union
    return _Row(numbers, categories, scored, label, subject, spent, time.time(), size)


def _named(values: dict[Any, Any]) -> dict[str, Any]:
    if not all(isinstance(name, str) for name in values):
        raise InvalidEventError("feature names must be strings")
    return {str(name): value for name, value in values.items()}


def _text(value: Any, what: str) -> str | None:
    """``value`` as a plain string (str subclasses such as numpy's or enums' are converted)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)  # the string itself, whatever the subclass prints
    raise InvalidEventError(f"{what} must be strings, got {type(value).__name__}")


def _batches(rows: list[_Row], max_count: int, max_bytes: int) -> list[tuple[int, list[_Row]]]:
    """(start index, rows) of each batch: runs of one shape (scores and labels present or not
    together), at most ``max_count`` rows and about ``max_bytes`` each."""
    out: list[tuple[int, list[_Row]]] = []
    start = 0
    for _, run in groupby(rows, key=lambda row: (row.score is None, row.label is None)):
        chunk: list[_Row] = []
        size, names = 0, set[str]()  # every column has a value (a null: a byte) for every row
        for row in run:
            grown = names | row.numeric.keys() | row.categorical.keys()
            padded = size + row.size + len(grown) * (len(chunk) + 1)
            if chunk and (len(chunk) >= max_count or padded > max_bytes):
                out.append((start, chunk))
                start += len(chunk)
                chunk, size = [], 0
                grown = set(row.numeric) | set(row.categorical)
            chunk.append(row)
            size, names = size + row.size, grown
        out.append((start, chunk))
        start += len(chunk)
    return out
