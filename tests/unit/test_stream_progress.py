"""Read progress shared between workers: claims per partition number and the common horizon."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

from auditline.streams.progress import CLAIM_KEY, FETCH_MARGIN_MS, LONG_AGO, Progress

from auditline.policy.deferral import Deferrals, event_millis
from tests.unit.policy.test_scenarios import ENGINE, WHEN, asset, move

TOPICS = ("a.assets", "a.movements")
MS = timedelta(milliseconds=1)


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
    assert progress.claims(consumer, now_ms=9_999)[0] == 9_999  # read to the end: the clock
    assert progress.published(consumer, now_ms=9_999)[CLAIM_KEY.format(0)] == 9_999


def test_alone_the_horizon_is_the_local_one() -> None:
    progress, consumer = Progress(TOPICS, 1), holding(0)
    progress.saw(TP("a.assets", 0), 4, 2_000)
    assert progress.horizon(consumer, {}) == LONG_AGO  # movements not read at all
    for tp in consumer.assignment():
        for offset in range(10):
            progress.saw(tp, offset, 3_000)
    # everything read, and no time when the end was seen (a driver without last_fetch_ms)
    assert progress.horizon(consumer, {}, now_ms=9_000) == 9_000


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


def test_alone_read_to_the_end_is_not_read_through_now() -> None:
    """The sequence a fresh worker saw (streams/progress.py): a declaration and its movements
    published together; one fetch brought the movements and showed the assets partition empty
    (the movements were appended first), the declaration came with the next fetch. The
    movements wait for it: before, a worker holding every partition judged them at once."""
    assets, movements = TP("a.assets", 0), TP("a.movements", 0)
    consumer = Fetching({assets: 0, movements: 0}, {assets: 131_950, movements: 131_950})
    progress = Progress(TOPICS, 1)
    progress.horizon(consumer, {}, now_ms=132_000)  # an idle tick: polls every 50 ms
    consumer.ends[movements] = 80
    consumer.fetched = {assets: 132_047, movements: 132_047}
    for offset in range(80):  # event times 132,010 .. 132,018: before the fetch at 132,047
        progress.saw(movements, offset, 132_010 + offset // 10, now_ms=132_111)
    horizon = progress.horizon(consumer, {}, now_ms=132_111)
    assert horizon == 131_950 - FETCH_MARGIN_MS  # not None: "judge everything"
    assert horizon < 132_010  # so every movement waits for the declaration (132,005)
    consumer.ends[assets] = 8  # the next fetch: the declarations, not taken yet
    consumer.fetched = {assets: 132_129, movements: 132_129}
    assert progress.horizon(consumer, {}, now_ms=132_150) == LONG_AGO
    for offset in range(8):
        progress.saw(assets, offset, 132_005, now_ms=132_179)
    assert progress.horizon(consumer, {}, now_ms=132_179) == 132_047 - FETCH_MARGIN_MS


def test_a_topic_read_to_its_end_bounds_a_number_whose_other_topic_is_partly_read() -> None:
    """The other sequence a fresh worker saw: the first batch took one of 80 movements, the
    assets partition still empty at the last fetch. The number is read through when that end
    was seen, not through the movement taken: before, a topic read to its end was left out of
    its number's claim, and the movement judged at the end of its batch without its asset."""
    assets, movements = TP("a.assets", 0), TP("a.movements", 0)
    consumer = Fetching({assets: 0, movements: 0}, {assets: 630_050, movements: 630_050})
    progress = Progress(TOPICS, 1)
    progress.horizon(consumer, {}, now_ms=630_060)  # an idle tick
    consumer.ends[movements] = 80
    consumer.fetched = {assets: 630_183, movements: 630_183}
    progress.saw(movements, 0, 630_098, now_ms=630_216)
    assert progress.horizon(consumer, {}, now_ms=630_216) == 630_050 - FETCH_MARGIN_MS


def test_alone_a_movement_read_before_its_declaration_waits_for_it() -> None:
    """The same sequence as the audit agent runs it (``Deferrals`` at the batch's horizon): the
    movement is held and flagged once the declaration is read; a movement whose asset is
    never declared is judged once the polls have moved past it by the margin."""
    declared, moved = asset("ds", residency=("DE",)), move("ds", "US", when=WHEN + MS * 5)
    at = event_millis(moved)
    assets, movements = TP("a.assets", 0), TP("a.movements", 0)
    consumer = Fetching({assets: 0, movements: 0}, {assets: at - 60, movements: at - 60})
    progress, deferrals = Progress(TOPICS, 1), Deferrals(ENGINE, {})
    progress.horizon(consumer, {}, now_ms=at)  # an idle tick, nothing published yet
    consumer.ends[movements] = 2
    consumer.fetched = {assets: at + 40, movements: at + 40}  # brought the movements only
    orphan = move("other", "US", when=WHEN + MS * 6)
    for offset, event in enumerate((moved, orphan)):
        progress.saw(movements, offset, event_millis(event), now_ms=at + 100)
        assert deferrals.judge(event, may_wait=True) == []
    assert deferrals.release(progress.horizon(consumer, {}, now_ms=at + 100)) == []
    flagged = deferrals.judge(declared, may_wait=True)
    assert {e.envelope.event_id for e, _ in flagged} == {moved.envelope.event_id}
    assert deferrals.waiting() == 1  # the orphan: its asset may still be declared
    for polled in (at + 2_000, at + 2_050):  # idle ticks, the ends unchanged
        consumer.fetched = {assets: polled, movements: polled}
        horizon = progress.horizon(consumer, {}, now_ms=polled)
    deferrals.release(horizon)
    assert deferrals.waiting() == 0
