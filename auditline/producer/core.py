"""``AuditProducer``: validate, seal, spool, send — and never lose an event.

Life of an event in ``emit`` (``emit_many``: the same for a list of bodies of one kind):

1. validated into its frozen model (a bad call raises ``InvalidEventError`` naming the field,
   before any state changes) and its body encoded (``sealing.body_writer``), in the caller's
   thread without a lock;
2. sealed under the emit lock: the stream's next ``sequence`` and ``prev_hash``, its hash,
   optional signature;
3. appended to the on-disk spool (write-ahead), one ``write`` per call whatever the number of
   events: from here it survives a crash of this process;
4. handed to the transport by the same thread at once if nothing is waiting before it, else left
   to the pump thread, which sends the spool's backlog in order as the transport has room.

A delivery report acknowledges the spool record. After a restart (or a transport failure) the
unacknowledged records are compared with what the topic already holds (``delivered``) and only
the missing ones are resent, in order: nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any
from uuid import uuid4

from pydantic import ValidationError

from auditline.catalogue import Catalogue
from auditline.codec import Codec, make_codec
from auditline.errors import ConfigError, EmitError, InvalidEventError
from auditline.events import GIVEN, Envelope, Event, Location, ProducerInfo, StreamCheckpoint
from auditline.events.types import ZERO_HASH
from auditline.integrity.keyring import signer_for
from auditline.policy.preflight import Preflight, Proposal
from auditline.producer.helpers import LineageHelpers
from auditline.producer.predictions import PredictionBuffer
from auditline.producer.records import Receipt, SpoolRecord
from auditline.producer.sealing import Draft, EventKind, Sealer
from auditline.producer.spool import Head, Spool
from auditline.producer.transport import QueueFull, Transport, make_transport
from auditline.producer.validation import event_time_of, invalid_event
from auditline.producer.wire import timestamp_millis
from auditline.settings import AuditlineSettings, load_settings

log = logging.getLogger(__name__)
_ENVELOPE_KEYS = frozenset({"event_time", "trace_id"})
"""Keys of a body given to ``emit_many`` that set the envelope of that one event."""
RECOVERY_MARGIN_MS = 60_000  # clock skew allowance when scanning the topic after a restart
CHECKPOINT_ROOM_BYTES = 1 << 20  # the pump skips a checkpoint rather than wait for spool room
PUMP_INTERVAL_S = 0.01  # the pump serves reports and backlog this often when emit does not
FLUSH_POLL_S = 0.01  # flush serves reports in slices of this, checking the spool between them


_NO_HEAD = Head()  # a stream's head before its first event


def _millis(value: datetime | None) -> int | None:
    """A given event time (validated, see ``event_time_of``) in Avro's milliseconds."""
    return None if value is None else timestamp_millis(event_time_of(value))


@dataclass
class ProducerStats:
    emitted: int = 0
    delivered: int = 0
    sent_directly: int = 0
    sent_from_backlog: int = 0
    resent_after_recovery: int = 0
    skipped_already_delivered: int = 0
    delivery_failures: int = 0
    recoveries: int = 0


class AuditProducer(LineageHelpers):
    """Emit audit events from a service. Thread-safe; use as a context manager."""

    def __init__(
        self,
        settings: AuditlineSettings | None = None,
        *,
        transport: Transport | None = None,
        codec: Codec | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.catalogue = Catalogue(self.settings.topic_prefix)
        self.codec = codec or make_codec(self.settings, self.catalogue)
        config = self.settings.producer
        where = {"country": config.country, "provider": config.provider, "region": config.region}
        try:
            location = Location.model_validate(where, context=GIVEN)
        except ValidationError as exc:
            raise ConfigError(
                f"AUDITLINE_PRODUCER__COUNTRY/PROVIDER/REGION: {exc.errors()[0]['msg']}"
            ) from exc
        self.identity = ProducerInfo(
            service=config.service, instance=config.instance, location=location
        )
        self.sealer = Sealer(self.identity, self.codec.header, signer_for(self.settings))
        self._placeholder = Envelope.model_construct(
            event_id=uuid4(), event_time=datetime.now(UTC), producer=self.identity,
            stream="-", sequence=0, prev_hash=ZERO_HASH, hash=ZERO_HASH,
        )  # fmt: skip
        self.spool = Spool(
            self.settings.spool.path / _slug(f"{config.service}--{config.instance}"),
            self.settings.spool,
        )
        self._owns_transport = transport is None
        self.transport = transport or make_transport(self.settings)
        self.stats = ProducerStats()
        self._buffers: list[PredictionBuffer] = []
        self._emit_lock = threading.Lock()
        self._kinds: dict[type[Event], EventKind] = {}
        self._poll_lock = threading.Lock()  # one thread at a time serves delivery reports
        self._last_poll = 0.0
        self._send_lock = threading.RLock()
        self._send_cursor = self.spool.low
        self._backlog: Iterator[SpoolRecord] | None = None
        self._held: SpoolRecord | None = None
        self._recovered = threading.Event()
        self._failed = threading.Event()
        self._stop = threading.Event()
        self._checkpoint_interval = self.settings.producer.checkpoint_interval_s
        self._next_checkpoint = time.monotonic() + self._checkpoint_interval
        self._pump = threading.Thread(target=self._run_pump, name="auditline-pump", daemon=True)
        self._pump.start()

    # -- emitting ---------------------------------------------------------------------------

    def emit(
        self,
        model: type[Event],
        /,
        *,
        event_time: datetime | None = None,
        trace_id: str | None = None,
        tenant: str | None = None,
        **fields: Any,
    ) -> Receipt:
        """Validate, seal, spool and send one event of kind ``model`` with body ``fields``."""
        kind = self._kinds.get(model) or self._kind_of(model)
        when = _millis(event_time or self.default_event_time())
        # ``_draft`` without its look-ups: event_time and trace_id bind to the parameters
        draft = (kind.write(self.validate(kind.model, fields)), when, Sealer.tail(trace_id, tenant))
        return self._emit_drafts(kind, [draft])[0]

    def emit_many(
        self,
        model: type[Event],
        bodies: Iterable[Mapping[str, Any]],
        *,
        event_time: datetime | None = None,
        trace_id: str | None = None,
        tenant: str | None = None,
    ) -> list[Receipt]:
        """Emit several events of one kind with one spool write (the batch path). A body's own
        ``event_time`` or ``trace_id`` key sets that event's, instead of the arguments'."""
        kind = self._kinds.get(model) or self._kind_of(model)
        when = _millis(event_time or self.default_event_time())
        # validated and encoded before the lock: only the chain is sealed under it
        drafts = [self._draft(kind, body, when, trace_id, tenant) for body in bodies]
        return self._emit_drafts(kind, drafts) if drafts else []

    def default_event_time(self) -> datetime | None:
        """The event time of an event emitted without one (None: the moment it is sealed); a
        producer on another clock (a replay, a simulation) overrides this."""
        return None

    def _emit_drafts(self, kind: EventKind, drafts: list[Draft]) -> list[Receipt]:
        """Seal and spool ``drafts`` under the emit lock, then send them (steps 2-4)."""
        with self._emit_lock:
            head = self.spool.heads.get(kind.stream, _NO_HEAD)
            records, frames, receipts = self.sealer.chain(
                kind, drafts, head.next_sequence, head.last_hash, self.spool.next_index
            )
            self.spool.append(records, frames)
            self.stats.emitted += len(receipts)
        try:  # the events are spooled: from here on a failure is the pump's to retry
            self._send_direct(records)
            self._serve_reports()
        except Exception as exc:  # noqa: BLE001 - e.g. librdkafka refusing a message
            log.warning("sending spooled events failed, the pump retries: %s", exc)
            self._failed.set()
        return receipts

    def _kind_of(self, model: type[Event]) -> EventKind:
        """What every event of ``model`` shares on its way out (made once per kind)."""
        topic = self.catalogue.for_model(model).topic
        kind = self.sealer.kind(model, topic, self.stream_of(model), self.codec.header(model))
        self._kinds[model] = kind
        return kind

    def _draft(
        self,
        kind: EventKind,
        body: Mapping[str, Any],
        when: int | None,
        trace_id: str | None,
        tenant: str | None,
    ) -> Draft:
        """One body validated (``InvalidEventError`` before anything is spooled) and encoded."""
        own_time = body.get("event_time")
        millis = _millis(own_time) if own_time else when
        tail = Sealer.tail(body.get("trace_id", trace_id), tenant)
        return kind.write(self.validate(kind.model, body)), millis, tail

    def check(
        self,
        asset_id: str,
        *,
        to: Location | Mapping[str, Any],
        purpose: str,
        on: datetime | None = None,
        **details: Any,
    ) -> Preflight:
        """May ``asset_id``, with everything it inherits, go ``to`` for ``purpose`` (on ``on``,
        default now)? Judged before the transfer, from the audit store's lineage
        (``AUDITLINE_CLICKHOUSE__DSN``, the ``store`` extra) with the policy engine the stream
        processors use; nothing is emitted. ``details``: ``mechanism``, ``source``,
        ``exporter``, ``importer``, ``records`` (see ``auditline.policy.preflight.Proposal``).
        Block the transfer when ``allowed`` is false; ``NotFoundError`` for an unknown asset."""
        try:
            from auditline.sinks.preflight import check_transfer
        except ImportError as exc:
            raise ConfigError(
                "AuditProducer.check reads lineage from the audit store: "
                "pip install 'auditline[store]'"
            ) from exc
        given = {"destination": to, "source": details.pop("source", None), **details}
        for key in ("destination", "source"):
            if isinstance(given[key], Mapping):
                given[key] = Location.model_validate(given[key], context=GIVEN)
        proposal = Proposal(
            asset_id=asset_id, purpose=purpose, on=event_time_of(on), **given
        )  # fmt: skip
        answer: Preflight = check_transfer(self.settings, proposal)
        return answer

    def stream_of(self, model: type[Event]) -> str:
        """The producer stream events of ``model`` belong to: service/instance/topic."""
        topic = self.catalogue.for_model(model).topic
        suffix = topic.removeprefix(f"{self.settings.topic_prefix}.")
        return f"{self.identity.service}/{self.identity.instance}/{suffix}"

    def checkpoint(self, *, final: bool = False) -> Receipt | None:
        """Emit a signed ``StreamCheckpoint``: the head (sequence, hash) of every stream.

        The pump emits one every ``checkpoint_interval_s`` and ``close`` a final one, so that the
        newest events of a stream cannot be deleted from the store unnoticed (``auditline
        verify``); a producer that has emitted nothing has nothing to checkpoint (None).
        """
        own = self.stream_of(StreamCheckpoint)
        with self._emit_lock:  # heads change under emit
            current = sorted(self.spool.heads.items())
        heads = [
            {"stream": stream, "sequence": head.next_sequence - 1, "hash": head.last_hash}
            for stream, head in current
            if stream != own and head.next_sequence > 0
        ]
        self._next_checkpoint = time.monotonic() + self._checkpoint_interval
        if not heads:
            return None
        interval_ms = max(1, int(self._checkpoint_interval * 1000))
        return self.emit(StreamCheckpoint, heads=heads, interval_ms=interval_ms, final=final)

    def _checkpoint_due(self) -> None:
        room = self.settings.spool.max_bytes - self.spool.live_bytes
        if time.monotonic() >= self._next_checkpoint and room > CHECKPOINT_ROOM_BYTES:
            self.checkpoint()

    async def aemit(self, model: type[Event], /, **fields: Any) -> Receipt:
        """``emit`` for asyncio code.

        With ``on_full="raise"`` emit never waits (a validation, an encode and one disk write,
        well under a millisecond), so it runs inline; with ``"block"`` it may wait for spool room,
        so it runs in a worker thread and the event loop stays free.
        """
        if self.settings.spool.on_full == "raise":
            return self.emit(model, **fields)
        return await asyncio.to_thread(partial(self.emit, model, **fields))

    async def aflush(self, timeout: float = 30.0) -> bool:
        """``flush`` for asyncio code (waits in a worker thread)."""
        return await asyncio.to_thread(self.flush, timeout)

    def validate(self, model: type[Event], body: Mapping[str, Any]) -> Event:
        """The event model over the caller's fields, as ``emit`` checks them (raises
        ``InvalidEventError`` naming the first bad field).

        Only the body is validated here: the envelope is the producer's own and encoded by hand
        (``wire``), so the model carries a fixed placeholder envelope that is never encoded.
        """
        if "envelope" in body:
            raise InvalidEventError(
                "envelope is set by the producer; pass body fields only", field="envelope"
            )
        if _ENVELOPE_KEYS.isdisjoint(body):
            fields = {"envelope": self._placeholder, **body}
        else:
            fields = {k: v for k, v in body.items() if k not in _ENVELOPE_KEYS}
            fields["envelope"] = self._placeholder
        try:
            event: Event = model.__pydantic_validator__.validate_python(fields, context=GIVEN)
        except ValidationError as exc:
            raise invalid_event(model, exc) from exc
        return event

    # -- sending ----------------------------------------------------------------------------

    def _send_direct(self, records: list[SpoolRecord]) -> None:
        if not self._recovered.is_set():
            return
        with self._send_lock:
            if self._send_cursor != records[0].index or self._held is not None:
                return  # a backlog is waiting: the pump sends in order
            produce, sent = self.transport.produce, 0
            try:
                for record in records:
                    produce(record, record.index)
                    sent += 1
            except QueueFull:
                pass
            finally:
                self._send_cursor += sent
                self.stats.sent_directly += sent

    def _produce(self, record: SpoolRecord) -> None:
        self.transport.produce(record, record.index)

    def _serve_reports(self) -> None:
        """Serve delivery reports inline, at most every millisecond, if no other thread is."""
        now = time.monotonic()
        if now - self._last_poll < 0.001:
            return
        self._last_poll = now
        if self._poll_lock.acquire(blocking=False):
            try:
                self._handle_reports(0)
            finally:
                self._poll_lock.release()

    def _handle_reports(self, timeout: float) -> None:
        reports = self.transport.poll(timeout)
        delivered = [token for token, reason in reports if reason is None]
        if delivered:
            self.spool.ack(*delivered)
            self.stats.delivered += len(delivered)
        if len(delivered) < len(reports):
            self.stats.delivery_failures += len(reports) - len(delivered)
            self._failed.set()

    def _drain_backlog(self) -> None:
        if self._send_cursor >= self.spool.next_index:
            return
        with self._send_lock:
            while self._send_cursor < self.spool.next_index:
                record = self._held or self._next_backlog_record()
                if record is None:
                    return
                if self.spool.is_acked(record.index):
                    self._held = None
                    self._send_cursor = record.index + 1
                    continue
                try:
                    self._produce(record)
                except QueueFull:
                    self._held = record
                    return
                self._held = None
                self._send_cursor = record.index + 1
                self.stats.sent_from_backlog += 1

    def _next_backlog_record(self) -> SpoolRecord | None:
        if self._backlog is None:
            self._backlog = self.spool.read_from(self._send_cursor)
        record = next(self._backlog, None)
        if record is None:
            self._backlog = None  # caught up with what was on disk when reading started
        elif record.index < self._send_cursor:
            return self._next_backlog_record()
        return record

    # -- recovery ---------------------------------------------------------------------------

    def _recover(self) -> None:
        """Ack what the topics already hold; everything else is resent from the cursor."""
        with self._send_lock:
            pending = list(self.spool.pending())
            if pending:
                since = min(r.timestamp_ms for r in pending) - RECOVERY_MARGIN_MS
                delivered: dict[tuple[str, str], set[int]] = {}
                for record in pending:
                    place = (record.topic, record.stream)
                    if place not in delivered:
                        delivered[place] = self.transport.delivered(
                            record.topic, record.stream, since
                        )
                    if record.sequence in delivered[place]:
                        self.spool.ack(record.index)
                        self.stats.skipped_already_delivered += 1
                    else:
                        self.stats.resent_after_recovery += 1
            self._send_cursor = self.spool.low
            self._backlog, self._held = None, None
            self.stats.recoveries += 1
            self._recovered.set()

    def _reset_after_failure(self) -> None:
        self._recovered.clear()
        self._failed.clear()
        self.transport.flush(5)
        if self._owns_transport:
            self.transport.close()
            self.transport = make_transport(self.settings)

    def _run_pump(self) -> None:
        while not self._stop.is_set():
            try:
                if self._failed.is_set():
                    self._reset_after_failure()
                if not self._recovered.is_set():
                    self._recover()
                self._checkpoint_due()
                self._drain_backlog()
                with self._poll_lock:
                    self._handle_reports(0)
                self._stop.wait(PUMP_INTERVAL_S)
            except Exception:  # noqa: BLE001 - e.g. broker unreachable during recovery: retry
                time.sleep(0.5)

    # -- lifecycle --------------------------------------------------------------------------

    def prediction_buffer(self, **options: Any) -> PredictionBuffer:
        """Single predictions gathered into ``PredictionBatch`` events (``PredictionBuffer``'s
        options: model_name, model_version, location, max_count, max_delay_ms, ...), emitted
        also whenever this producer is flushed or closed."""
        buffer = PredictionBuffer(self, on_close=self._buffers.remove, **options)
        self._buffers.append(buffer)
        return buffer

    def flush(self, timeout: float = 30.0) -> bool:
        """Emit the buffered predictions, then wait until every emitted event is acknowledged by
        the transport; True when done (False also when predictions stay buffered: a full
        spool)."""
        written = True
        for buffer in list(self._buffers):
            try:
                buffer.flush()
            except EmitError as exc:
                log.warning("predictions still buffered: %s", exc)
                written = False
        deadline = time.monotonic() + timeout
        while not self.spool.wait_acked(0):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._await_reports(min(FLUSH_POLL_S, left))
        return written

    def _await_reports(self, timeout: float) -> None:
        """Wait up to ``timeout`` for delivery reports, serving them in this thread (as
        librdkafka's flush does) unless another thread is: a flush returns as soon as the last
        report arrives, not at the pump's next round."""
        if not self._poll_lock.acquire(blocking=False):
            self.spool.wait_acked(timeout)
            return
        try:
            self._handle_reports(timeout)
        except Exception as exc:  # noqa: BLE001 - e.g. a transport being replaced: the pump's
            log.debug("serving delivery reports in flush failed: %s", exc)
            self.spool.wait_acked(timeout)
        finally:
            self._poll_lock.release()

    @property
    def pending(self) -> int:
        """Events spooled but not yet acknowledged."""
        return self.spool.unacked

    def close(self, timeout: float = 30.0) -> bool:
        """Flush (up to ``timeout``), stop the pump, close transport and spool.

        Events still unacknowledged stay in the spool and are sent by the next producer with the
        same service and instance. A final checkpoint is emitted first.
        """
        if self._stop.is_set():
            return self.spool.unacked == 0
        try:
            # each buffer closed, even after one fails (it logs what a full spool cannot take)
            written = [_closed(buffer) for buffer in list(self._buffers)]
            try:
                self.checkpoint(final=True)
            except EmitError as exc:  # e.g. a full spool: close anyway; verify reports silence
                log.warning("no final checkpoint: %s", exc)
            return self.flush(timeout) and all(written)
        finally:
            self._stop.set()
            self._pump.join(5)
            self.transport.flush(1)
            self.spool.close()

    def __enter__(self) -> AuditProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _closed(buffer: PredictionBuffer) -> bool:
    try:
        return buffer.close()
    except Exception:
        log.exception("closing a prediction buffer failed")
        return False


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
