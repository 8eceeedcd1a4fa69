"""Yearly counters with several writers: two workers sharing one global table add up.

Each worker judges the movements of its own input partitions on its own replica of the shared
state; a replica applies the other worker's writes as they arrive (last write per key wins, as
a faust GlobalTable does). Counted in one key, each worker's additions would overwrite the
other's; counted in per-partition shards, the total is every movement's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from auditline.policy.counters import Shards
from auditline.policy.engine import PolicyEngine
from auditline.policy.model import load_policy
from tests.unit.policy.test_scenarios import asset, move

SHARDS = Shards.partitions(2)
ENGINE = PolicyEngine(load_policy(), SHARDS)


class Replica(dict[str, Any]):
    """One worker's copy of the global table, recording the keys it wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.written[key] = value

    def replicate_to(self, other: Replica) -> None:
        dict.update(other, self.written)
        self.written = {}


def judge(replica: Replica, shard: str, *events: Any) -> list[list[tuple[str, str]]]:
    return [[(d.rule_id, d.decision) for d in ENGINE.evaluate(e, replica, shard)] for e in events]


def china(n: int, day: int = 2) -> Any:
    when = datetime(2026, 3, day, 9, tzinfo=UTC)
    return move("cn", "SG", src="CN", distinct_subjects=n, when=when)


def two_workers() -> tuple[Replica, Replica]:
    a, b = Replica(), Replica()
    cn = asset("cn", country="CN", cls="personal", origin_jurisdictions=("CN",))
    judge(a, "p0", cn)
    a.replicate_to(b)
    return a, b


def test_china_volumes_judged_by_two_workers_add_up() -> None:
    a, b = two_workers()
    assert judge(a, "p0", china(40_000), china(30_000)) == [[], []]
    assert judge(b, "p1", china(20_000)) == [[]]  # b has not seen a's additions yet: 20k
    a.replicate_to(b)
    b.replicate_to(a)
    # 90k in all; the next 20k crosses the 100k band on either worker, whichever judges it
    assert judge(b, "p1", china(20_000)) == [[("CN-CONTRACT", "alert")]]
    b.replicate_to(a)
    decision = ENGINE.evaluate(china(1), a, "p0")[0]
    assert decision.facts["exported_personal"] == str(110_001)
    assert set(SHARDS.own_key("cn:acme-eu:2026", s) for s in SHARDS.names) <= set(a)


def test_one_key_written_by_two_workers_loses_additions() -> None:
    """What the shards prevent: the same movements counted in one key fall short."""
    a, b = two_workers()
    judge(a, "", china(40_000), china(30_000))
    judge(b, "", china(20_000))
    a.replicate_to(b)
    b.replicate_to(a)  # b's 20k overwrites a's 70k: last writer wins
    assert a["cn:acme-eu:2026"]["personal"] == 20_000


def test_the_contract_band_starts_on_the_first_day_any_worker_saw_it() -> None:
    a, b = two_workers()
    assert judge(a, "p0", china(150_000, day=2)) == [[("CN-CONTRACT", "alert")]]
    a.replicate_to(b)
    late = ENGINE.evaluate(china(10, day=13), b, "p1")
    assert [(d.rule_id, d.decision) for d in late] == [("CN-CONTRACT", "deny")]
    assert late[0].facts["band_since"] == "2026-03-02"


def test_derogations_used_on_two_workers_count_together() -> None:
    a, b = two_workers()
    de = asset("ds")
    judge(a, "p0", de)
    a.replicate_to(b)
    use = {"kind": "derogation", "occasional": True}
    assert judge(a, "p0", *[move("ds", "SG", mechanism=use) for _ in range(2)]) == [[], []]
    assert judge(b, "p1", move("ds", "SG", mechanism=use)) == [[]]
    a.replicate_to(b)
    assert judge(b, "p1", move("ds", "SG", mechanism=use)) == [[("EU-3RD", "alert")]]


def test_a_single_writer_and_earlier_unsharded_counts_are_still_summed() -> None:
    state: dict[str, Any] = {"cn:acme-eu:2026": {"personal": 95_000, "sensitive": 0, "events": []}}
    judge_one = PolicyEngine(load_policy(), SHARDS).evaluate
    judge_one(asset("cn", country="CN", cls="personal", origin_jurisdictions=("CN",)), state)
    decisions = judge_one(china(10_000), state, "p1")
    assert [(d.rule_id, d.decision) for d in decisions] == [("CN-CONTRACT", "alert")]
    assert decisions[0].facts["exported_personal"] == "105000"
