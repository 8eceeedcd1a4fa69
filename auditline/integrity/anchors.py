"""Anchors: what a stream is known to have reached, judged against where its stored copy ends.

A hash chain shows a change or a hole inside a stream, but not that its newest events (or the whole
stream) were removed: the shortened chain is still a valid chain. Anchors close that blind spot,
the way CloudTrail digest files and transparency-log signed tree heads do:

* **producer checkpoints** (``StreamCheckpoint``): signed statements of every stream's head,
  emitted on a cadence and on close; a stored stream that ends before a checkpointed head is
  ``truncated``, one with no events at all ``vanished``, an event whose hash differs from the
  checkpointed one ``tampered``;
* **cadence**: a producer whose newest checkpoint is older than twice its interval and not final
  is ``silent`` — what deleting the tail together with the checkpoints after it looks like;
* **attestations** (``auditline attest``) and the **broker's** copy of the checkpoints topic,
  which live apart from the store and catch a deletion that took every stored checkpoint too.

Pure: the caller collects anchors and stored stream ends; ``judge`` returns findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from auditline.events import IntegrityKind, StreamCheckpoint
from auditline.integrity.verify import Finding


@dataclass(frozen=True)
class Anchor:
    """A claim that ``stream`` reached ``sequence`` with ``hash``, made by ``source`` at ``at``."""

    stream: str
    sequence: int
    hash: str
    source: str  # e.g. "checkpoint 3f2c… (store)", "attestation 2026-12-01T10:00:00+00:00"
    at: datetime
    seen: datetime | None = None  # when it reached where it was read (settling); default ``at``

    @property
    def settled_since(self) -> datetime:
        return self.seen or self.at


@dataclass(frozen=True)
class Cadence:
    """The newest checkpoint of one producer's checkpoint stream."""

    stream: str
    at: datetime
    interval: timedelta
    final: bool


@dataclass(frozen=True)
class StoredEnd:
    """Where a stream's stored copy ends."""

    sequence: int
    hash: str


def checkpoint_anchors(
    checkpoint: StreamCheckpoint, origin: str, seen: datetime | None = None
) -> list[Anchor]:
    """The heads a checkpoint attests, and the checkpoint itself in its own stream; ``seen``:
    when it was stored (a checkpoint replayed from a spool is new to the store though old)."""
    env = checkpoint.envelope
    source = f"checkpoint {env.event_id} ({origin})"
    own = Anchor(env.stream, env.sequence, env.hash, source, env.event_time, seen)
    return [own] + [
        Anchor(head.stream, head.sequence, head.hash, source, env.event_time, seen)
        for head in checkpoint.heads
    ]


def newest_cadences(checkpoints: Iterable[StreamCheckpoint]) -> dict[str, Cadence]:
    newest: dict[str, StreamCheckpoint] = {}
    for checkpoint in checkpoints:
        env = checkpoint.envelope
        known = newest.get(env.stream)
        if known is None or env.sequence > known.envelope.sequence:
            newest[env.stream] = checkpoint
    return {
        stream: Cadence(
            stream,
            c.envelope.event_time,
            timedelta(milliseconds=c.interval_ms),
            c.final,
        )
        for stream, c in newest.items()
    }


def judge(
    anchors: Iterable[Anchor],
    ends: Mapping[str, StoredEnd],
    stored_hashes: Mapping[tuple[str, int], str],
    cadences: Iterable[Cadence],
    *,
    now: datetime,
    settle: timedelta,
) -> list[Finding]:
    """Findings of the stored streams against every anchor and cadence.

    ``stored_hashes``: the stored hash at each anchored (stream, sequence) that is stored.
    ``settle``: anchors younger than this are skipped for truncation (the events they name may
    still be on their way through the sink), and silence is judged only past twice the interval +
    settle.
    """
    found: list[Finding] = []
    reached: dict[str, Anchor] = {}
    for anchor in anchors:
        stored = stored_hashes.get((anchor.stream, anchor.sequence))
        if stored is not None and stored != anchor.hash:
            found.append(_finding(IntegrityKind.TAMPERED, anchor, _differs(anchor)))
        best = reached.get(anchor.stream)
        settled = anchor.settled_since <= now - settle
        if settled and (best is None or anchor.sequence > best.sequence):
            reached[anchor.stream] = anchor
    for stream, anchor in sorted(reached.items()):
        end = ends.get(stream)
        if end is None:
            found.append(_finding(IntegrityKind.VANISHED, anchor, _vanished(anchor)))
        elif end.sequence < anchor.sequence:
            found.append(_finding(IntegrityKind.TRUNCATED, anchor, _truncated(anchor, end)))
    for cadence in cadences:
        if not cadence.final and cadence.at + 2 * cadence.interval + settle < now:
            found.append(_silent(cadence, ends.get(cadence.stream)))
    return found


def _finding(kind: IntegrityKind, anchor: Anchor, detail: str) -> Finding:
    return Finding(kind, anchor.stream, "", anchor.sequence, detail)


def _differs(anchor: Anchor) -> str:
    return (
        f"stored event {anchor.sequence} has another hash than {anchor.source} "
        f"at {anchor.at.isoformat()} attests"
    )


def _vanished(anchor: Anchor) -> str:
    return (
        f"no stored events, but {anchor.source} at {anchor.at.isoformat()} attests "
        f"sequence {anchor.sequence}"
    )


def _truncated(anchor: Anchor, end: StoredEnd) -> str:
    return (
        f"stored stream ends at sequence {end.sequence}, but {anchor.source} at "
        f"{anchor.at.isoformat()} attests sequence {anchor.sequence}: "
        f"{anchor.sequence - end.sequence} newest event(s) missing"
    )


def _silent(cadence: Cadence, end: StoredEnd | None) -> Finding:
    seconds = int(cadence.interval.total_seconds())
    return Finding(
        IntegrityKind.SILENT,
        cadence.stream,
        "",
        end.sequence if end else 0,
        f"newest checkpoint at {cadence.at.isoformat()} and none since, although the producer "
        f"checkpoints every {seconds} s and did not close: its newest events and checkpoints "
        "may have been deleted, or it stopped without closing",
    )
