"""Read progress shared between workers: claims per partition number and the common horizon."""

from __future__ import annotations

from typing import Any, NamedTuple

from auditline.streams.progress import CLAIM_KEY, FETCH_MARGIN_MS, LONG_AGO, Progress

TOPICS = ("a.assets", "a.movements")


class TP(NamedTuple):
    topic: str
    partition: int


class Consumer:
    """The two calls Progress makes of faust's consumer: its assignment and high watermarks."""

    def __init__(self, ends: dict[TP, int]) -> None:
        self.ends = ends
        self._committed_offset: dict[TP, int] = {}

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int:
        return self.ends[tp]


def holding(*numbers: int, end: int = 10) -> Consumer:
    return Consumer({TP(t, n): end for t in TOPICS for n in numbers})


def test_a_number_is_read_through_its_slowest_topic_or_to_the_end() -> None:
    progress, consumer = Progress(TOPICS, 2), holding(0, 1)
    for offset in range(10):  # assets of partition 0 read to the end
        progress.saw(TP("a.assets", 0), offset, 1_000 + offset)
    progress.saw(TP("a.movements", 0), 3, 5_000)  # movements of partition 0: 6 to read
    assert progress.claims(consumer) == {0: 5_000, 1: LONG_AGO}
    for offset in range(4, 10):
        progress.saw(TP("a.movements", 0), offset, 6_000)
    assert progress.claims(consumer)[0] is None  # read to the end
    assert progress.published(consumer, now_ms=9_999)[CLAIM_KEY.format(0)] == 9_999


def test_alone_the_horizon_is_the_local_one() -> None:
    progress, consumer = Progress(TOPICS, 1), holding(0)
    progress.saw(TP("a.assets", 0), 4, 2_000)
    assert progress.horizon(consumer, {}) == LONG_AGO  # movements not read at all
    for tp in consumer.assignment():
        for offset in range(10):
            progress.saw(tp, offset, 3_000)
    assert progress.horizon(consumer, {}) is None  # everything read: judge all


def test_other_workers_claims_bound_the_horizon() -> None:
    progress, consumer = Progress(TOPICS, 3), holding(0)
    for tp in consumer.assignment():
        for offset in range(10):
            progress.saw(tp, offset, 3_000)
    shared: dict[str, Any] = {CLAIM_KEY.format(1): 7_000}
    # partition 2 never claimed: nothing is known to be read there
    assert progress.horizon(consumer, shared, now_ms=10_000) == LONG_AGO
    shared[CLAIM_KEY.format(2)] = 8_000
    # this worker read everything (the clock, 10 s); the others through 7 and 8 s
    assert progress.horizon(consumer, shared, now_ms=10_000) == 7_000
    progress.saw(TP("a.assets", 0), 10, 4_000)
    consumer.ends[TP("a.assets", 0)] = 20  # more arrived here, read through 4 s
    assert progress.horizon(consumer, shared, now_ms=10_000) == 4_000


def test_a_future_dated_event_claims_no_more_than_now() -> None:
    progress, consumer = Progress(TOPICS, 1), holding(0)
    progress.saw(TP("a.assets", 0), 0, 7_258_118_400_000, now_ms=5_000)  # dated 2200
    assert progress.claims(consumer)[0] == LONG_AGO  # movements unread at all
    progress.saw(TP("a.movements", 0), 0, 4_000, now_ms=5_000)
    assert progress.claims(consumer)[0] == 4_000


class Fetching(Consumer):
    """A consumer that says when it last saw each partition's end (aiokafka's poll time)."""

    def __init__(self, ends: dict[TP, int], fetched: dict[TP, int]) -> None:
        super().__init__(ends)
        self.fetched = fetched

    def last_fetch_ms(self, tp: TP) -> int | None:
        return self.fetched.get(tp)


def test_read_to_the_end_claims_when_the_end_was_seen_not_the_clock() -> None:
    """After a pause the last high watermark is stale: records appended since are unread, so a
    partition read to its end claims the time of the fetch that showed the end, less a margin."""
    ends = {TP(t, 0): 5 for t in TOPICS}
    consumer = Fetching(ends, {TP("a.assets", 0): 20_000, TP("a.movements", 0): 18_000})
    progress = Progress(TOPICS, 2)
    for tp in ends:
        for offset in range(5):
            progress.saw(tp, offset, 1_000, now_ms=60_000)
    # the poll that showed the end may have been handled long after the broker answered: only
    # an earlier poll is known to be covered
    assert progress.published(consumer, now_ms=60_000)[CLAIM_KEY.format(0)] == LONG_AGO
    consumer.fetched = {TP("a.assets", 0): 21_000, TP("a.movements", 0): 19_000}
    claim = progress.published(consumer, now_ms=60_000)[CLAIM_KEY.format(0)]
    assert claim == 18_000 - FETCH_MARGIN_MS  # not 60,000, nor the latest polls
    del consumer.fetched[TP("a.assets", 0)]  # never fetched: nothing known to be read
    assert progress.published(consumer, now_ms=60_000)[CLAIM_KEY.format(0)] == LONG_AGO
