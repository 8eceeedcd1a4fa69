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

Cost: a prediction whose feature names are the very string objects of the last one checked (a
dict the caller reuses, or ``record_values`` with one tuple of names, as ``AuditedModel`` does)
and whose score, label, subject and latency are plain is checked and copied by one ``struct``
call: about 2 µs on a small VM, and about 1.5 µs more as its share of emitting its batch. Any
other is checked field by field (a few µs more) and its names become those the next calls are
compared with. Both ways buffer the same values and emit the same batches.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import groupby, repeat
from operator import is_
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from uuid import uuid4

from auditline.errors import EmitError, InvalidEventError
from auditline.events import GIVEN, Location, PredictionBatch

if TYPE_CHECKING:
    from auditline.producer.core import AuditProducer
    from auditline.producer.records import Receipt

log = logging.getLogger(__name__)
JURISDICTION = re.compile(r"[A-Z][A-Z0-9_-]{1,15}")  # auditline.events.types.Jurisdiction
RETRY_S = 1.0  # the timer's pause between attempts while the spool refuses a batch
DEFAULT_MAX_BYTES = 512 * 1024  # columns per batch, well below Kafka's 1 MB message limit
SUBJECTS_KNOWN = 256  # subject jurisdictions remembered as checked, per buffer
_FLOAT_OR_NONE = {float, type(None)}
_STR_OR_NONE = {str, type(None)}
_NO_CATEGORIES: dict[str, str | None] = {}  # shared by rows without any (never changed)


_Row = tuple[  # one prediction (a plain tuple: a named one costs 0.2 µs more to build)
    tuple[str, ...],  # _NAMES of the numeric features
    bytes | tuple[float | None, ...],  # their values: native doubles, or a tuple with nulls
    dict[str, str | None],  # _CATEGORICAL features
    float | None,  # _SCORE
    str | None,  # _LABEL
    str | None,  # subject jurisdiction
    float,  # latency_ms
    float,  # _AT: wall time (s)
    int,  # _SIZE: the bytes it adds to a batch's columns, about
]
_NAMES: Final = 0
_CATEGORICAL: Final = 2
_SCORE: Final = 3
_LABEL: Final = 4
_AT: Final = 7
_SIZE: Final = 8


class _Shape(NamedTuple):
    """The numeric feature names last checked: a call with these very key objects (plain,
    non-empty strings) needs only its values checked, by ``pack``."""

    names: tuple[str, ...]
    pack: Callable[..., bytes]  # the values as native doubles; refuses what is no number
    size: int  # the bytes of such a row without label (as ``_checked`` counts them)


@lru_cache(maxsize=64)
def _shape(width: int) -> tuple[Callable[..., bytes], int]:
    return struct.Struct(f"{width}d").pack, 9 * width + 24  # a double: 9 bytes with its union


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
        self._shape = _Shape((), *_shape(0))  # replaced by every call checked field by field
        self._subjects: set[str] = set()  # subject jurisdictions checked already
        self._lock = threading.Lock()  # the buffer's state; record() takes it without _cond
        self._cond = threading.Condition(self._lock)
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
        shape = self._shape
        row = None
        try:  # the common case (module doc): the very names of the last call checked
            if (
                type(numeric_features) is dict and not categorical_features
                and all(map(is_, numeric_features, shape.names))  # fewer or more: pack refuses
            ):  # fmt: skip
                row = self._plain(shape, numeric_features.values(), score, label,
                                  subject=subject_jurisdiction, latency_ms=latency_ms)  # fmt: skip
        except Exception:  # noqa: BLE001 - whatever it is, _checked says what is wrong
            row = None
        self._append(row or self._checked(
            numeric_features, categorical_features, score=score, label=label,
            subject=subject_jurisdiction, latency_ms=latency_ms,
        ))  # fmt: skip

    def record_values(
        self,
        names: tuple[str, ...],
        values: Sequence[float | None],
        *,
        score: float | None = None,
        label: str | None = None,
        subject_jurisdiction: str | None = None,
        categorical_features: Mapping[str, str | None] | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        """``record`` of the numeric features ``dict(zip(names, values))``, without that dict:
        for a caller that passes one tuple of names every time (``AuditedModel``)."""
        shape = self._shape
        row = None
        try:
            if names is shape.names and not categorical_features:
                row = self._plain(shape, values, score, label, subject=subject_jurisdiction,
                                  latency_ms=latency_ms)  # fmt: skip
        except Exception:  # noqa: BLE001 - whatever it is, _checked says what is wrong
            row = None
        if row is None:
            row = self._checked(_features(names, values), categorical_features, score=score,
                                label=label, subject=subject_jurisdiction,
                                latency_ms=latency_ms)  # fmt: skip
            if len(row[_NAMES]) == len(names) and all(map(is_, row[_NAMES], names)):  # plain
                self._shape = _Shape(names, *_shape(len(names)))  # this tuple, for the next call
        self._append(row)

    def _plain(
        self,
        shape: _Shape,
        values: Iterable[Any],
        score: float | None,
        label: str | None,
        *,
        subject: str | None,
        latency_ms: float,
    ) -> _Row | None:
        """The row of a call in the common case, its values checked and copied by ``pack``
        (which raises if one is no number); None when another field is not plain."""
        if not (
            type(score) in _FLOAT_OR_NONE and (label is None or type(label) is str)
            and (subject is None or subject in self._subjects)
            and type(latency_ms) is float and latency_ms >= 0
        ):  # fmt: skip
            return None
        return (
            shape.names, shape.pack(*values), _NO_CATEGORIES, score, label, subject, latency_ms,
            time.time(), shape.size + len(label) if label else shape.size,
        )  # fmt: skip

    def _append(self, row: _Row) -> None:
        with self._lock:
            if self._closed:
                raise EmitError("the prediction buffer is closed")
            rows = self._rows
            if self._failure is not None and len(rows) >= 2 * self.max_count:
                failure = self._failure  # a new error of its kind (e.g. SpoolFullError) each time
                raise type(failure)(f"{len(rows)} predictions wait: {failure}")
            if not rows:
                self._since = time.monotonic()
                self._cond.notify()
            rows.append(row)
            self._bytes += row[_SIZE]
            full = len(rows) >= self.max_count or self._bytes >= self.max_bytes
            if not full or self._failure is not None:
                return  # while the spool refuses, the timer retries: the caller is not held
        self._emit_buffered()

    def _checked(
        self,
        numeric: Mapping[str, float | None],
        categorical: Mapping[str, str | None] | None,
        *,
        score: float | None,
        label: str | None,
        subject: str | None,
        latency_ms: float,
    ) -> _Row:
        """``_checked`` for a call off the common case; its names (and subject) are those the
        next calls are compared with."""
        row = _checked(numeric, categorical, score=score, label=label, subject=subject,
                       latency_ms=latency_ms)  # fmt: skip
        self._shape = _Shape(row[_NAMES], *_shape(len(row[_NAMES])))
        if type(subject) is str and len(self._subjects) < SUBJECTS_KNOWN:
            self._subjects.add(subject)
        return row

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
                event_time=datetime.fromtimestamp(chunk[0][_AT], UTC),
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
            self._bytes = sum(row[_SIZE] for row in self._rows)
            self._since = time.monotonic()
            self._failure = failure

    def _body(self, rows: list[_Row]) -> dict[str, Any]:
        """The batch's fields, its columns gathered at C level (this runs per row)."""
        names, values, categories, scores, labels, subjects, spent, _, _ = zip(*rows, strict=True)
        return {
            **self.fixed, "batch_id": uuid4().hex, "count": len(rows),
            "numeric_features": _numeric_columns(names, values),
            "categorical_features": _columns(categories) if any(categories) else [],
            "scores": list(scores) if scores[0] is not None else [],
            "labels": list(labels) if labels[0] is not None else [],
            "subject_jurisdictions": list(subjects) if any(subjects) else [],
            "latency_ms": sum(spent),
        }  # fmt: skip


def _numeric_columns(
    names: tuple[tuple[str, ...], ...], values: tuple[bytes | tuple[float | None, ...], ...]
) -> list[dict[str, Any]]:
    """The numeric columns of rows with these names and values: one array sliced per column
    when every row has the same names and no nulls, else gathered by name as ``_columns``."""
    first = names[0]
    if names.count(first) == len(names):
        try:
            matrix = array("d", b"".join(values))  # type: ignore[arg-type]  # all bytes, or:
        except TypeError:  # some rows hold nulls
            pass
        else:
            width = len(first)
            return [{"name": n, "values": matrix[i::width].tolist()} for i, n in enumerate(first)]
    return _columns([
        dict(zip(n, array("d", v) if isinstance(v, bytes) else v, strict=True))
        for n, v in zip(names, values, strict=True)
    ])  # fmt: skip


def _columns(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Columns of values by name (None where a row has none), named in order of appearance."""
    return [{"name": n, "values": list(map(dict.get, rows, repeat(n)))} for n in _names(rows)]


def _names(columns: Sequence[Mapping[str, Any]]) -> list[str]:
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
    values = tuple(numbers.values())
    packed = values if None in values else _shape(len(values))[0](*values)
    return (tuple(numbers), packed, categories or _NO_CATEGORIES, scored, label, subject, spent,
            time.time(), size)  # fmt: skip


def _features(names: tuple[str, ...], values: Sequence[float | None]) -> dict[str, Any]:
    try:
        return dict(zip(names, values, strict=True))
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"one value for each of the {len(names)} names: {exc}") from exc


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
    if 0 < len(rows) <= max_count and _one_batch(rows, max_bytes):
        return [(0, rows)]
    out: list[tuple[int, list[_Row]]] = []
    start = 0
    for _, run in groupby(rows, key=lambda row: (row[_SCORE] is None, row[_LABEL] is None)):
        chunk: list[_Row] = []
        size, names = 0, set[str]()  # every column has a value (a null: a byte) for every row
        for row in run:
            grown = names.union(row[_NAMES], row[_CATEGORICAL])
            padded = size + row[_SIZE] + len(grown) * (len(chunk) + 1)
            if chunk and (len(chunk) >= max_count or padded > max_bytes):
                out.append((start, chunk))
                start += len(chunk)
                chunk, size = [], 0
                grown = set(row[_NAMES]).union(row[_CATEGORICAL])
            chunk.append(row)
            size, names = size + row[_SIZE], grown
        out.append((start, chunk))
        start += len(chunk)
    return out


def _one_batch(rows: list[_Row], max_bytes: int) -> bool:
    """Whether ``_batches``' loop would keep these rows (at most ``max_count``) in one batch,
    known without it in the common case: the same names, no categories, scores and labels each
    in every row or in none, and the padded size (it only grows) within ``max_bytes``."""
    names, _, categoricals, scores, labels, _, _, _, sizes = zip(*rows, strict=True)
    n = len(rows)
    return (
        names.count(names[0]) == n and not any(categoricals)
        and scores.count(None) in (0, n) and labels.count(None) in (0, n)
        and sum(sizes) + len(names[0]) * n <= max_bytes
    )  # fmt: skip
