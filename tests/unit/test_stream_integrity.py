"""The worker's integrity check over its table: a record read again after a restart is not judged
twice (no false duplicate), while a replay by the producer (a new record) is still flagged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from auditline.streams.integrity import ChainJudge
from auditline.streams.tables import JsonTable

from auditline.demo import demo_events
from auditline.events import IntegrityKind


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


def judge_all(judge: ChainJudge, events: list[Any], offsets: range) -> list[Any]:
    return [judge.judge(e, None, Message("t", 0, o)) for e, o in zip(events, offsets, strict=True)]


def test_records_read_again_after_a_restart_are_not_judged_twice() -> None:
    events = demo_events()
    stored: dict[str, Any] = {}  # the changelog-backed table, as JSON text
    first = JsonTable(stored)
    assert judge_all(ChainJudge(first), events, range(len(events))) == [[]] * len(events)
    first.flush()

    restarted = ChainJudge(JsonTable(stored))  # a new worker over the recovered table
    again = judge_all(restarted, events[-3:], range(len(events) - 3, len(events)))
    assert again == [None, None, None]


def test_a_producer_replay_is_still_a_duplicate() -> None:
    events = demo_events()
    judge = ChainJudge(JsonTable({}))
    judge_all(judge, events, range(len(events)))
    replay = judge.judge(events[-1], None, Message("t", 0, len(events)))  # a new record
    assert replay is not None and [f.kind for f in replay] == [IntegrityKind.DUPLICATE]
    other_partition = judge.judge(events[-1], None, Message("t", 1, 0))
    assert other_partition is not None and other_partition[0].kind == IntegrityKind.DUPLICATE


def test_a_record_whose_check_failed_is_checked_again_when_read_again() -> None:
    events = demo_events()[:2]
    judge = ChainJudge(JsonTable({}))
    assert judge_all(judge, events[:1], range(1)) == [[]]
    observe = judge.verifier.observe

    def failing(*_: Any) -> Any:
        raise RuntimeError("the check failed")

    judge.verifier.observe = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        judge.judge(events[1], None, Message("t", 0, 1))
    judge.verifier.observe = observe  # type: ignore[method-assign]
    assert judge.judge(events[1], None, Message("t", 0, 1)) == []  # judged, not taken as read
    assert judge.judge(events[1], None, Message("t", 0, 1)) is None  # now it was
