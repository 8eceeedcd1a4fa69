"""How far the worker has read its audit partitions, for judging lineage in order.

``Progress`` records, per input partition, the next offset and the latest event time of what
the audit agent has taken. ``horizon`` is the event time through which every assigned audit
partition has been read: the latest event time of the slowest partition that still has records
to read (at its last fetch's high watermark), or None when all are read to the end. Events
whose lineage has not arrived are judged once the horizon passes them (``Deferrals``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

LONG_AGO = -(2**62)  # a horizon that releases nothing


class Progress:
    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = set(topics)
        self.read: dict[Any, tuple[int, int]] = {}  # tp -> (next offset, latest event time ms)

    def saw(self, tp: Any, offset: int, event_time_ms: int | None) -> None:
        _, latest = self.read.get(tp, (0, LONG_AGO))
        if event_time_ms is not None:
            latest = max(latest, event_time_ms)
        self.read[tp] = (offset + 1, latest)

    def partitions(self, consumer: Any) -> set[int]:
        """The audit partition numbers assigned to this worker."""
        return {tp.partition for tp in consumer.assignment() if tp.topic in self.topics}

    def horizon(self, consumer: Any) -> int | None:
        """Event time (ms) read through on every assigned audit partition; None: all read."""
        horizon: int | None = None
        for tp in consumer.assignment():
            if tp.topic not in self.topics:
                continue
            try:
                end = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - e.g. the partition is moving: assume unread
                return LONG_AGO
            if end is None:
                return LONG_AGO
            next_offset, latest = self.read.get(tp, (None, LONG_AGO))
            if next_offset is None:  # nothing taken here yet: from where the group committed
                next_offset = getattr(consumer, "_committed_offset", {}).get(tp) or 0
            if next_offset < end:
                horizon = latest if horizon is None else min(horizon, latest)
        return horizon
