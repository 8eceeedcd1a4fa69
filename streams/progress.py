"""How far the audit partitions have been read, by this worker and by the others.

``Progress`` records, per input partition, the next offset and the latest event time of what
the audit agent has taken. A partition number's *claim* is the event time through which it has
been read, on the slowest of its audit topics: on one that still has records to read (at its
last fetch's high watermark), the latest event time taken (never later than now); on one read
to its end, the time of the poll before the one that showed that end, less ``FETCH_MARGIN_MS``
(see ``_covered``). Not the clock, nor the last poll's time: after a pause (a stop, a long
collection) the last high watermark is stale, and records appended since are not read yet.
Nor is a topic read to its end left out, as if read through now: a fetch shows each
partition's end as the broker had it then, and records of different topics published together
are appended one partition after the other, so a fetch can carry movements and show the assets
partition at its end while their declaration (of an earlier event time) is appended after it.

The audit topics are co-partitioned, so one worker holds a partition number. Each worker
publishes its numbers' claims in the shared policy state (``read@p<n>``) after the state writes
of the reads they cover (one batch later, or from the idle timer once everything taken has been
judged and flushed), and every second while idle. ``horizon`` is the event time through which
every partition number, this worker's and the others', has been read: events waiting for
lineage are judged once it passes them (``Deferrals``), so a node declared on another worker's
partition is waited for while that worker has not read past the event. This worker's own
numbers count as it publishes them, also when it holds them all.
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

    def claims(self, consumer: Any, now_ms: int | None = None) -> dict[int, int]:
        """Per assigned partition number: the event time (ms) read through, on the slowest of
        its audit topics."""
        numbers: dict[int, list[int]] = {}
        for tp in consumer.assignment():
            if tp.topic in self.topics:
                numbers.setdefault(tp.partition, []).append(self._through(consumer, tp, now_ms))
        return {number: min(times) for number, times in numbers.items()}

    def _through(self, consumer: Any, tp: Any, now_ms: int | None) -> int:
        """With records to read, the latest event time taken; read to the end, when that end
        was seen (``_seen_end``, asked first: a later fetch only raises the high watermark)."""
        seen = self._seen_end(consumer, tp, now_ms)
        try:
            end = consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - e.g. the partition is moving: assume unread
            return LONG_AGO
        if end is None:
            return LONG_AGO
        next_offset, latest = self.read.get(tp, (None, LONG_AGO))
        if next_offset is None:  # nothing taken here yet: from where the group committed
            next_offset = getattr(consumer, "_committed_offset", {}).get(tp) or 0
        return latest if next_offset < end else seen

    def _seen_end(self, consumer: Any, tp: Any, now_ms: int | None) -> int:
        """A time through which ``tp`` is read once read to its high watermark: an earlier
        poll's, less the margin (the clock when the consumer cannot say: a driver without
        ``last_fetch_ms``)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        last_fetch = getattr(consumer, "last_fetch_ms", None)
        if last_fetch is None:
            return now
        covered = self._covered(tp, last_fetch(tp))
        return LONG_AGO if covered is None else min(covered - FETCH_MARGIN_MS, now)

    def horizon(
        self, consumer: Any, shared: Shared | None = None, now_ms: int | None = None
    ) -> int:
        """Event time (ms) read through on every partition number: this worker's as it
        publishes them, also when it holds them all; ``shared``: the policy state holding the
        other workers' claims (``read@p<n>``), a number nobody has claimed yet counts as not
        read at all."""
        own = self.published(consumer, now_ms)
        times = list(own.values())
        for key in (CLAIM_KEY.format(number) for number in range(self.numbers)):
            if key not in own:
                claim = None if shared is None else shared.get(key)
                times.append(int(claim) if isinstance(claim, int) else LONG_AGO)
        return min(times, default=LONG_AGO)

    def published(self, consumer: Any, now_ms: int | None = None) -> dict[str, int]:
        """This worker's claims as the state entries to publish."""
        return {CLAIM_KEY.format(n): t for n, t in self.claims(consumer, now_ms).items()}

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
