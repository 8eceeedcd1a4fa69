"""``AuditProducer``: validate, seal, spool, send — and never lose an event.

Life of an event in ``emit``:

1. validated into its frozen model (a bad call raises ``InvalidEventError`` naming the field,
   before any state changes);
2. sealed: the stream's next ``sequence`` and ``prev_hash``, its hash, optional signature;
3. appended to the on-disk spool (write-ahead): from here it survives a crash of this process;
4. handed to the transport at once if nothing is waiting before it, else left to the pump
   thread, which sends the spool's backlog in order as the transport has room.

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
from uuid import UUID

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
from auditline.producer.records import SpoolRecord
from auditline.producer.sealing import Link, Sealer
from auditline.producer.spool import Head, Spool
from auditline.producer.transport import OutboundMessage, QueueFull, Transport, make_transport
from auditline.producer.validation import event_time_of, invalid_event
from auditline.producer.wire import UuidSource, avro_string
from auditline.settings import AuditlineSettings, load_settings

log = logging.getLogger(__name__)
_ENVELOPE_KEYS = frozenset({"event_time", "trace_id"})
"""Keys of a body given to ``emit_many`` that set the envelope of that one event."""
RECOVERY_MARGIN_MS = 60_000  # clock skew allowance when scanning the topic after a restart
CHECKPOINT_ROOM_BYTES = 1 << 20  # the pump skips a checkpoint rather than wait for spool room
PUMP_INTERVAL_S = 0.01  # the pump serves reports and backlog this often when emit does not


@dataclass(frozen=True, slots=True)
class Receipt:
    """What ``emit`` accepted: the event's identity in its stream."""

    event_id: UUID
    stream: str
    sequence: int
    hash: str


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
        self._new_id = UuidSource()
        self._placeholder = Envelope.model_construct(
            event_id=self._new_id(), event_time=datetime.now(UTC), producer=self.identity,
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
        return self.emit_many(
            model, [fields], event_time=event_time, trace_id=trace_id, tenant=tenant
        )[0]

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
        entry = self.catalogue.for_model(model)
        stream = self.stream_of(model)
        key, stream_avro = stream.encode(), avro_string(stream)
        when = event_time_of(event_time)
        with self._emit_lock:
            head = self.spool.heads.get(stream, Head())
            records, receipts = [], []
            now_ms = int(time.time() * 1000)
            index = self.spool.next_index
            for body in bodies:
                own_time = body.get("event_time")
                link = Link(
                    self._new_id(), event_time_of(own_time) if own_time else when, stream_avro,
                    head.next_sequence, head.last_hash, body.get("trace_id", trace_id), tenant,
                )  # fmt: skip
                sealed = self.sealer.seal(self.validate(model, body), link)
                digest_hex = sealed.digest.hex()
                records.append(
                    SpoolRecord(
                        index,
                        now_ms,
                        entry.topic,
                        key,
                        sealed.wire,
                        stream,
                        link.sequence,
                        sealed.digest,
                    )
                )
                receipts.append(Receipt(link.event_id, stream, link.sequence, digest_hex))
                head = Head(link.sequence + 1, digest_hex)
                index += 1
            if not records:
                return []
            self.spool.append(records)
            self.stats.emitted += len(records)
        try:  # the events are spooled: from here on a failure is the pump's to retry
            self._send_direct(records)
            self._serve_reports()
        except Exception as exc:  # noqa: BLE001 - e.g. librdkafka refusing a message
            log.warning("sending spooled events failed, the pump retries: %s", exc)
            self._failed.set()
        return receipts

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
        fields = {k: v for k, v in body.items() if k not in _ENVELOPE_KEYS}
        try:
            return model.model_validate({"envelope": self._placeholder, **fields}, context=GIVEN)
        except ValidationError as exc:
            raise invalid_event(model, exc) from exc

    # -- sending ----------------------------------------------------------------------------

    def _send_direct(self, records: list[SpoolRecord]) -> None:
        if not self._recovered.is_set():
            return
        with self._send_lock:
            for record in records:
                if self._send_cursor != record.index or self._held is not None:
                    return  # a backlog is waiting: the pump sends in order
                try:
                    self._produce(record)
                except QueueFull:
                    return
                self._send_cursor += 1
                self.stats.sent_directly += 1

    def _produce(self, record: SpoolRecord) -> None:
        message = OutboundMessage(
            record.topic,
            record.key,
            record.value,
            record.stream,
            record.sequence,
            record.timestamp_ms,
        )
        self.transport.produce(message, record.index)

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
        while time.monotonic() < deadline:
            if self.spool.wait_acked(min(0.1, max(0.0, deadline - time.monotonic()))):
                return written
        return written and self.spool.unacked == 0

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
