"""How far the audit partitions have been read, by this worker and by the others.

``Progress`` records, per input partition, the next offset and the latest event time of what
the audit agent has taken. A partition number's *claim* is the event time through which it has
been read: the latest event time taken (never later than now) on the slowest of its audit
topics that still has records to read (at its last fetch's high watermark); when all are read
to the end, the time of the poll before the one that showed that end, less
``FETCH_MARGIN_MS`` (see ``_covered``). Not the clock, nor the last poll's time: after a pause (a
stop, a long collection) the last high watermark is stale, and records appended since are not
read yet.

The audit topics are co-partitioned, so one worker holds a partition number. Each worker
publishes its numbers' claims in the shared policy state (``read@p<n>``) after the state writes
of the reads they cover (one batch later, or from the idle timer once everything taken has been
judged and flushed), and every second while idle. ``horizon`` is the event time through which
every partition number, this worker's and the others', has been read: events waiting for
lineage are judged once it passes them (``Deferrals``), so a node declared on another worker's
partition is waited for while that worker has not read past the event. ``None`` (all read, judge
everything) only when this worker holds every partition number and all are read to the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

LONG_AGO = -(2**62)  # a horizon that releases nothing
CLAIM_KEY = "read@p{}"
FETCH_MARGIN_MS = 1000  # between the broker's high watermark and the fetch's arrival, and more


class Shared(Protocol):
    """The shared state the claims are read from (the worker's policy-state table)."""

    def get(self, key: str, default: Any = None) -> Any: ...


class Progress:
    def __init__(self, topics: Iterable[str], partitions: int = 1) -> None:
        self.topics = set(topics)
        self.numbers = partitions  # partition numbers of every audit topic
        self.read: dict[Any, tuple[int, int]] = {}  # tp -> (next offset, latest event time ms)
        self._polls: dict[Any, tuple[int | None, int]] = {}  # tp -> (earlier, latest) poll time

    def saw(
        self, tp: Any, offset: int, event_time_ms: int | None, now_ms: int | None = None
    ) -> None:
        """Record ``offset`` taken; an event time from the future counts as now, so that one
        future-dated event cannot claim the partition read through its time."""
        _, latest = self.read.get(tp, (0, LONG_AGO))
        if event_time_ms is not None:
            now = int(time.time() * 1000) if now_ms is None else now_ms
            latest = max(latest, min(event_time_ms, now))
        self.read[tp] = (offset + 1, latest)

    def partitions(self, consumer: Any) -> set[int]:
        """The audit partition numbers assigned to this worker."""
        return {tp.partition for tp in consumer.assignment() if tp.topic in self.topics}

    def claims(self, consumer: Any) -> dict[int, int | None]:
        """Per assigned partition number: the event time (ms) read through, or None when every
        audit topic's partition of that number is read to its end."""
        numbers: set[int] = set()
        unread: dict[int, list[int]] = {}
        for tp in consumer.assignment():
            if tp.topic in self.topics:
                numbers.add(tp.partition)
                through = self._through(consumer, tp)
                if through is not None:
                    unread.setdefault(tp.partition, []).append(through)
        return {n: min(unread[n]) if n in unread else None for n in numbers}

    def _through(self, consumer: Any, tp: Any) -> int | None:
        try:
            end = consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - e.g. the partition is moving: assume unread
            return LONG_AGO
        if end is None:
            return LONG_AGO
        next_offset, latest = self.read.get(tp, (None, LONG_AGO))
        if next_offset is None:  # nothing taken here yet: from where the group committed
            next_offset = getattr(consumer, "_committed_offset", {}).get(tp) or 0
        return latest if next_offset < end else None

    def horizon(
        self, consumer: Any, shared: Shared | None = None, now_ms: int | None = None
    ) -> int | None:
        """Event time (ms) read through on every partition number; None: all read here.

        ``shared``: the policy state holding the other workers' claims (``read@p<n>``); a
        number nobody has claimed yet counts as not read at all."""
        own = self.claims(consumer)
        unread = [t for t in own.values() if t is not None]
        others = [n for n in range(self.numbers) if n not in own]
        if not others or shared is None:
            return min(unread) if unread else None
        times = list(self._as_published(own, consumer, now_ms).values())
        for number in others:
            claim = shared.get(CLAIM_KEY.format(number))
            times.append(int(claim) if isinstance(claim, int) else LONG_AGO)
        return min(times)

    def published(self, consumer: Any, now_ms: int | None = None) -> dict[str, int]:
        """This worker's claims as the state entries to publish (a partition number read to
        the end: when its last fetches showed the end, less the margin)."""
        return self._as_published(self.claims(consumer), consumer, now_ms)

    def _as_published(
        self, claims: dict[int, int | None], consumer: Any, now_ms: int | None
    ) -> dict[str, int]:
        return {
            CLAIM_KEY.format(number): self._fetched(consumer, number, now_ms)
            if through is None
            else through
            for number, through in claims.items()
        }

    def _fetched(self, consumer: Any, number: int, now_ms: int | None) -> int:
        """When every audit partition of ``number`` was last seen at its end, less the margin
        (the clock when the consumer cannot say: a driver without ``last_fetch_ms``)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        last_fetch = getattr(consumer, "last_fetch_ms", None)
        if last_fetch is None:
            return now
        seen: list[int | None] = [
            self._covered(tp, last_fetch(tp))
            for tp in consumer.assignment()
            if tp.topic in self.topics and tp.partition == number
        ]
        known = [at for at in seen if at is not None]
        if not known or len(known) < len(seen):
            return LONG_AGO
        return min(min(known) - FETCH_MARGIN_MS, now)

    def _covered(self, tp: Any, polled: int | None) -> int | None:
        """A time before which every record of ``tp`` was appended within its current high
        watermark: an earlier poll's time. The latest poll's time is when its response was
        handled, which can be long after the broker sent it (a paused process handles a stale
        response on resuming); a response handled after an earlier one was asked for after it,
        so its high watermark covers what was appended before that earlier poll."""
        if polled is None:
            return None
        earlier, latest = self._polls.get(tp, (None, polled))
        if polled != latest:
            earlier, latest = latest, polled
        self._polls[tp] = (earlier, latest)
        return earlier
