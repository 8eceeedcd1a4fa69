"""Events read before their lineage: held back, judged once it arrives (or once every partition
has been read past them), with the same decisions as in event-time order."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from auditline.events import Event, ModelDeployed, Prediction, TrainingRun
from auditline.policy.deferral import MAX_PER_NODE, Deferrals
from tests.unit.policy.test_scenarios import ENGINE, SCC, WHEN, asset, event, importer, loc, move


def lineage() -> list[Event]:
    """A DE-pinned dataset copied to the US, trained on there, the model served in Singapore."""
    later = [WHEN + timedelta(minutes=i) for i in range(5)]
    return [
        asset("ds", residency=("DE",), collection_purposes=("analytics",)),
        move("ds", "US", when=later[1], target_asset_id="ds-us", mechanism=SCC,
             importer=importer("US", "active")),
        event(TrainingRun, later[2], run_id="r1", status="completed", model_name="m",
              model_version="1", inputs=("ds-us",), code_version="c", location=loc("US"),
              purpose="analytics"),
        event(ModelDeployed, later[3], deployment_id="d1", model_name="m", model_version="1",
              status="deployed", location=loc("SG")),
    ]  # fmt: skip


def hops(judged: list[tuple[Event, Any]]) -> list[tuple[str, str, str]]:
    return sorted((d.rule_id, d.facts["hop"], str(e.envelope.event_id)) for e, d in judged)


def in_order(events: list[Event]) -> list[tuple[str, str, str]]:
    state: dict[str, Any] = {}
    return hops([(e, d) for e in events for d in ENGINE.evaluate(e, state)])


def test_events_read_in_reverse_give_the_decisions_of_event_time_order() -> None:
    events = lineage()
    expected = in_order(events)
    assert {hop for _, hop, _ in expected} >= {"movement", "training", "serving"}
    state: dict[str, Any] = {}
    deferrals = Deferrals(ENGINE, state)
    judged = []
    for e in reversed(events):  # the deployment first, the declaration last
        judged += deferrals.judge(e, may_wait=True)
    assert hops(judged) == expected
    assert deferrals.waiting() == 0
    json.dumps(state)  # deferred events live in the state as JSON (a changelog-backed table)


def test_without_deferral_the_inherited_hops_are_missed() -> None:
    state: dict[str, Any] = {}
    plain = [(e, d) for e in reversed(lineage()) for d in ENGINE.evaluate(e, state)]
    assert hops(plain) == []  # what the worker did before: each judged before its lineage


def test_waiting_events_are_judged_on_their_own_facts_once_the_horizon_passes() -> None:
    _, move_out, training, deployed = lineage()
    deferrals = Deferrals(ENGINE, {})
    assert deferrals.judge(training, may_wait=True) == []  # input "ds-us" unknown: held back
    assert deferrals.judge(deployed, may_wait=True) == []  # model unknown: held back
    assert deferrals.waiting() == 2
    millis = int(training.envelope.event_time.timestamp() * 1000)
    assert deferrals.release(millis - 1) == [] and deferrals.waiting() == 2
    assert deferrals.release(millis) == []  # judged: no constraints known, so no decision
    assert deferrals.waiting() == 1  # the deployment, later than the horizon, still waits
    assert deferrals.release(None) == [] and deferrals.waiting() == 0
    # the declaration and the copy arrive after all: the copy is judged, nothing else again
    assert {hop for _, hop, _ in hops(deferrals.judge(move_out, may_wait=True))} == set()


def test_without_more_to_read_nothing_waits() -> None:
    _, _, training, _ = lineage()
    deferrals = Deferrals(ENGINE, {})
    assert deferrals.judge(training, may_wait=False) == [] and deferrals.waiting() == 0


def test_what_is_held_is_bounded() -> None:
    deferrals = Deferrals(ENGINE, {})
    orphans = [move("nowhere", "US", target_asset_id=f"c{i}") for i in range(MAX_PER_NODE + 5)]
    for orphan in orphans:
        deferrals.judge(orphan, may_wait=True)
    assert deferrals.waiting() == MAX_PER_NODE  # the rest were judged at once


def test_holders_of_different_spaces_share_a_state_without_sharing_keys() -> None:
    state: dict[str, Any] = {}
    _, _, training, deployed = lineage()
    first, second = Deferrals(ENGINE, state, space="p0"), Deferrals(ENGINE, state, space="p1")
    first.judge(training, may_wait=True)
    second.judge(deployed, may_wait=True)
    assert (first.waiting(), second.waiting()) == (1, 1)
    assert first.release(None) == [] and (first.waiting(), second.waiting()) == (0, 1)


def test_a_node_provided_by_another_holder_releases_its_waiting_events() -> None:
    """The copy that creates "ds-us" is judged on another partition (or another worker): the
    training run waiting here is judged at the next release, before any horizon passes it."""
    state: dict[str, Any] = {}
    declared, move_out, training, _ = lineage()
    here, there = Deferrals(ENGINE, state, space="p1"), Deferrals(ENGINE, state, space="p0")
    assert here.judge(training, may_wait=True) == [] and here.waiting() == 1
    there.judge(declared, may_wait=True)
    there.judge(move_out, may_wait=True)
    assert here.waiting() == 1  # nothing judged here provided the node
    released = here.release(0)  # no partition read past the training run (1970) yet
    assert ("RES-PIN", "training", str(training.envelope.event_id)) in hops(released)
    assert here.waiting() == 0


def test_a_prediction_read_before_its_model_leaves_the_day_to_a_later_one() -> None:
    events = lineage()
    state: dict[str, Any] = {}

    def prediction() -> Event:
        return event(Prediction, WHEN + timedelta(minutes=10), prediction_id="p",
                     model_name="m", model_version="1", location=loc("SG"), latency_ms=1.0)  # fmt: skip

    assert ENGINE.evaluate(prediction(), state) == []  # the model is not known yet
    for e in events:
        ENGINE.evaluate(e, state)
    hops = [(d.rule_id, d.facts["hop"]) for d in ENGINE.evaluate(prediction(), state)]
    assert ("RES-PIN", "prediction") in hops  # the same day, once the model is known
    assert ENGINE.evaluate(prediction(), state) == []  # and then once per day, as before
