"""Durable write-ahead spool: every event is on local disk before it is handed to Kafka.

Layout: ``<path>/<first index>.seg`` segment files of framed records (length + CRC-32), a
``acked`` file with the low watermark (every index below it is delivered) and ``heads.json``
with each stream's chain head as of the last deleted segment.

- Crash safety: records are written with ``os.write`` on an unbuffered descriptor, so a killed
  process loses nothing it returned from ``append``; ``fsync`` (``always`` / ``interval`` /
  ``never``) decides what survives a power loss. ``always`` fsyncs before ``append`` returns
  (one fsync per call: a batch is one write and one fsync); ``interval`` leaves it to a syncer
  thread that fsyncs what was written every ``fsync_interval_ms``, so the emitting thread never
  waits for the disk and an idle spool is synced all the same. A torn final record is cut off
  on open.
- Bound: the bytes of live segments never exceed ``max_bytes``; at the bound ``append`` blocks
  up to ``emit_timeout_ms`` (``on_full="block"``) or raises at once (``"raise"``), then raises
  ``SpoolFullError``. Nothing is ever dropped silently.
- Acknowledgement: delivered indexes are acked (in any order); the watermark advances over the
  contiguous prefix and whole segments below it are deleted.
- Observability: ``depth`` (records not yet acknowledged), ``live_bytes`` and
  ``oldest_pending_s`` (how long the oldest of them has waited, to within ``MARK_EVERY`` records;
  after a restart counted from the records' timestamps) are read by the producer's metrics.
- One writer: a spool folder is locked (``flock`` on ``LOCK``) while open. Two processes with
  the same service and instance would otherwise append to one chain from two places (forked
  sequences, broken hashes, records resent twice); the second gets a ``SpoolInUseError``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from auditline.errors import ConfigError, EmitError
from auditline.events import ZERO_HASH
from auditline.producer.records import SpoolRecord, parse_frames
from auditline.settings import SpoolSettings

MARK_EVERY = 512
log = logging.getLogger(__name__)


class SpoolFullError(EmitError):
    """The spool reached ``max_bytes``: Kafka has been unreachable too long for the bound."""


class SpoolInUseError(ConfigError):
    """Another open producer (in this or another process) writes to the same spool folder."""


class Head(NamedTuple):
    """A stream's chain head: the next sequence and the hash of the last event."""

    next_sequence: int = 0
    last_hash: str = ZERO_HASH


@dataclass
class _Segment:
    first: int
    path: Path
    size: int
    last: int = -1  # last index written, -1 while empty
    heads_at_end: dict[str, Head] = field(default_factory=dict)
    marks: list[tuple[int, int]] = field(default_factory=list)  # (index, byte offset) samples

    def mark(self, index: int, offset: int) -> None:
        if not self.marks or index - self.marks[-1][0] >= MARK_EVERY:
            self.marks.append((index, offset))

    def offset_of(self, index: int) -> int:
        """A byte offset at or before the record ``index`` (where reading may start)."""
        offset = 0
        for marked, at in self.marks:
            if marked > index:
                break
            offset = at
        return offset


class Spool:
    """Append-only, bounded, acknowledged log of sealed events (thread-safe)."""

    def __init__(self, path: Path, settings: SpoolSettings) -> None:
        self.path = path
        self.settings = settings
        # the settings append reads, as plain attributes (it runs once per emit)
        self._max_bytes = settings.max_bytes
        self._segment_bytes = settings.segment_bytes
        self._sync_by_thread = settings.fsync == "interval" and settings.fsync_interval_ms > 0
        self._sync_each = settings.fsync != "never" and not self._sync_by_thread
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_folder(self.path)
        self._mutex = threading.RLock()  # the condition's lock: entered directly, it costs less
        self._lock = threading.Condition(self._mutex)
        self._acked_above: set[int] = set()
        self._written: deque[tuple[int, float]] = deque()  # (first index, wall time) per append
        self.heads: dict[str, Head] = self._read_heads()
        self.low = self._read_acked()
        self._segments = self._open_segments()
        self._live_bytes = sum(segment.size for segment in self._segments)
        self.next_index = max(self.low, self._segments[-1].last + 1) if self._segments else self.low
        self._fd = -1
        self._sync_lock = threading.Lock()  # the descriptor is fsynced and closed under it
        self._dirty = False  # written since the last fsync
        self._sync_failure: OSError | None = None  # the syncer thread's, for the next append
        self.closed = False
        self._roll()
        if settings.fsync == "interval" and settings.fsync_interval_ms > 0:
            _start_syncer(self, settings.fsync_interval_ms / 1000)

    # -- recovery ---------------------------------------------------------------------------

    def _read_heads(self) -> dict[str, Head]:
        try:
            raw = json.loads((self.path / "heads.json").read_text())
        except FileNotFoundError:
            return {}
        return {stream: Head(v["next_sequence"], v["last_hash"]) for stream, v in raw.items()}

    def _read_acked(self) -> int:
        try:
            return int((self.path / "acked").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _open_segments(self) -> list[_Segment]:
        segments = []
        for seg_path in sorted(self.path.glob("*.seg")):
            data = seg_path.read_bytes()
            records, intact = parse_frames(data)
            if intact < len(data):  # a torn write at crash time: cut it off
                with seg_path.open("r+b") as fh:
                    fh.truncate(intact)
            segment = _Segment(int(seg_path.stem), seg_path, intact)
            offset = 0
            for record in records:
                self.heads[record.stream] = Head(record.sequence + 1, record.hash.hex())
                segment.last = record.index
                if record.index >= self.low and (
                    not self._written or record.index - self._written[-1][0] >= MARK_EVERY
                ):
                    self._written.append((record.index, record.timestamp_ms / 1000))
                segment.mark(record.index, offset)
                offset += len(record.frame())
            segment.heads_at_end = dict(self.heads)
            segments.append(segment)
        return segments

    def pending(self) -> Iterator[SpoolRecord]:
        """Records not yet acknowledged, in index order (what a restart must resend)."""
        return self.read_from(self.low)

    def read_from(self, index: int) -> Iterator[SpoolRecord]:
        with self._lock:
            segments = [s for s in self._segments if s.last >= index]
        for segment in segments:
            with segment.path.open("rb") as fh:
                fh.seek(segment.offset_of(index))
                records, _ = parse_frames(fh.read())
            yield from (r for r in records if r.index >= index)

    # -- writing ----------------------------------------------------------------------------

    def append(self, records: Sequence[SpoolRecord], frames: Sequence[bytes] | None = None) -> None:
        """Write records (indexes must continue ``next_index``) with one ``write``, waiting for
        room if full; ``frames``: the records' frames, when the caller made them already."""
        if frames is None:
            frames = [r.frame() for r in records]
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        size = len(data)
        first, last = records[0].index, records[-1].index
        with self._mutex:
            if self._sync_failure is not None:  # the syncer's last fsync failed: say so
                failure, self._sync_failure = self._sync_failure, None
                raise OSError(failure.errno, f"fsync of the spool {self.path} failed: "
                              f"{failure.strerror}")  # fmt: skip
            if self._live_bytes + size > self._max_bytes:
                self._wait_for_room(size)
            segment = self._segments[-1]
            if segment.size >= self._segment_bytes:
                self._roll()
                segment = self._segments[-1]
            _write_all(self._fd, data)
            if not segment.marks or last - segment.marks[-1][0] >= MARK_EVERY:
                offset = segment.size
                for record, frame in zip(records, frames, strict=True):
                    segment.mark(record.index, offset)
                    offset += len(frame)
            segment.size += size
            segment.last = last
            self._set_heads(records)
            self._live_bytes += size
            if not self._written or first - self._written[-1][0] >= MARK_EVERY:
                self._written.append((first, time.time()))  # one per 512 records
            self.next_index = last + 1
            if self._sync_by_thread:
                self._dirty = True  # fsynced by the syncer thread within the interval
            elif self._sync_each:
                os.fsync(self._fd)  # "always" (or an interval of 0): before append returns

    def _set_heads(self, records: Sequence[SpoolRecord]) -> None:
        """Each stream's head after ``records`` (their last of it)."""
        if len(records) == 1:
            record = records[0]
            self.heads[record.stream] = Head(record.sequence + 1, record.hash.hex())
            return
        latest = {record.stream: record for record in records}
        for stream, record in latest.items():
            self.heads[stream] = Head(record.sequence + 1, record.hash.hex())

    def _wait_for_room(self, size: int) -> None:
        if self.live_bytes + size <= self.settings.max_bytes:
            return
        if size > self.settings.max_bytes:
            raise SpoolFullError(f"{size} bytes cannot fit a spool of {self.settings.max_bytes}")
        timeout = self.settings.emit_timeout_ms / 1000 if self.settings.on_full == "block" else 0
        if not self._lock.wait_for(
            lambda: self.live_bytes + size <= self.settings.max_bytes, timeout
        ):
            raise SpoolFullError(
                f"spool {self.path} holds {self.live_bytes} of {self.settings.max_bytes} bytes "
                "undelivered: Kafka is unreachable or too slow. Raise AUDITLINE_SPOOL__MAX_BYTES "
                "or restore the broker; nothing was dropped, this event was not accepted"
            )

    def sync_if_written(self) -> None:
        """fsync what was written since the last fsync (the syncer thread's work); a failure is
        kept, and the next ``append`` raises it (durability was lost: the emitter must know)."""
        with self._sync_lock:
            if self._dirty and self._fd >= 0:
                self._dirty = False  # a write from here on marks it again
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self._dirty = True
                    self._sync_failure = exc
                    raise

    def _roll(self) -> None:
        """Start a new segment; the finished one keeps the chain heads as of its end."""
        if self._fd >= 0:
            with self._sync_lock:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd, self._dirty = -1, False
            self._segments[-1].heads_at_end = dict(self.heads)
        if self._segments and self._segments[-1].last < 0:
            segment = self._segments[-1]  # reuse an empty tail segment
        else:
            segment = _Segment(self.next_index, self.path / f"{self.next_index:020d}.seg", 0)
            self._segments.append(segment)
        self._fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if segment.size:
            os.lseek(self._fd, 0, os.SEEK_END)

    # -- acknowledgement ----------------------------------------------------------------------

    def ack(self, *indexes: int) -> None:
        """Mark records delivered (any order, repeats allowed); one lock and one wake-up per
        call."""
        with self._mutex:
            low, above = self.low, self._acked_above
            above.update([i for i in indexes if i >= low])
            if above and min(above) == low and max(above) - low + 1 == len(above):
                self.low = low + len(above)  # the usual case: a contiguous run from the mark
                above.clear()
            else:
                while low in above:
                    above.discard(low)
                    low += 1
                self.low = low
            self._forget_acknowledged_appends()
            self._drop_delivered_segments()
            self._lock.notify_all()

    def _drop_delivered_segments(self) -> None:
        while len(self._segments) > 1 and self._segments[0].last < self.low:
            done = self._segments.pop(0)
            self._live_bytes -= done.size
            self._write_json("heads.json", done.heads_at_end)
            self._write_text("acked", str(self.low))
            done.path.unlink(missing_ok=True)

    def _write_json(self, name: str, heads: dict[str, Head]) -> None:
        payload = {
            s: {"next_sequence": h.next_sequence, "last_hash": h.last_hash}
            for s, h in heads.items()
        }
        self._write_text(name, json.dumps(payload))

    def _write_text(self, name: str, text: str) -> None:
        tmp = self.path / f".{name}.tmp"
        with tmp.open("w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path / name)

    def is_acked(self, index: int) -> bool:
        with self._mutex:
            return index < self.low or index in self._acked_above

    @property
    def live_bytes(self) -> int:
        return self._live_bytes

    @property
    def unacked(self) -> int:
        return self.next_index - self.low - len(self._acked_above)

    def oldest_pending_s(self, now: float | None = None) -> float:
        """Seconds the oldest unacknowledged record has been in the spool (0 when none is)."""
        with self._lock:
            self._forget_acknowledged_appends()
            if self.low >= self.next_index or not self._written:
                return 0.0
            return max(0.0, (time.time() if now is None else now) - self._written[0][1])

    def _forget_acknowledged_appends(self) -> None:
        written = self._written
        while len(written) > 1 and written[1][0] <= self.low:
            written.popleft()

    def wait_acked(self, timeout: float) -> bool:
        """Wait until every appended record is acknowledged."""
        with self._lock:
            return self._lock.wait_for(lambda: self.low >= self.next_index, timeout)

    def sync(self) -> None:
        with self._lock, self._sync_lock:
            os.fsync(self._fd)
            self._dirty = False
            self._write_text("acked", str(self.low))

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if self._fd >= 0:
                self.sync()
                with self._sync_lock:
                    os.close(self._fd)
                    self._fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the folder's lock
                self._lock_fd = -1


def _start_syncer(spool: Spool, interval_s: float) -> None:
    """fsync ``spool`` every ``interval_s`` while it is written to (``fsync="interval"``): off
    the emitting thread, and bounded in time even when the producer falls idle. The thread
    holds the spool weakly and ends when it is closed or collected."""
    ref = weakref.ref(spool)

    def run() -> None:
        while True:
            time.sleep(interval_s)
            current = ref()
            if current is None or current.closed:
                return
            try:
                current.sync_if_written()
            except OSError:
                log.exception("fsync of the spool %s failed", current.path)
            del current

    threading.Thread(target=run, name=f"auditline-spool-sync {spool.path}", daemon=True).start()


def _lock_folder(path: Path) -> int:
    """An exclusive lock on ``path/LOCK``, held while the descriptor stays open."""
    fd = os.open(path / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolInUseError(
            f"spool {path} is in use by another producer: give each process its own "
            "AUDITLINE_PRODUCER__INSTANCE (stable across its restarts, e.g. the pod name or "
            "worker-1, worker-2), or close the other producer first"
        ) from None
    return fd


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)  # all of it, but for a signal or a full disk
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]
