"""Predictions about identifiable people: serving a data subject from abroad is a transfer of
that person's personal data, judged by their jurisdiction's regime, once per (model version,
subject jurisdiction, serving country, day), whatever the model was trained on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from auditline.events import Event, Prediction, PredictionBatch
from auditline.policy.engine import PolicyEngine
from auditline.policy.model import load_policy
from tests.unit.policy.test_scenarios import event, loc

ENGINE = PolicyEngine(load_policy())
DAY1, DAY2 = datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 3, 9, tzinfo=UTC)


def single(subject: str | None, served_in: str, when: datetime = DAY1) -> Event:
    return event(Prediction, when, prediction_id="p", model_name="public-model",
                 model_version="1", location=loc(served_in), latency_ms=1.0,
                 subject_jurisdiction=subject)  # fmt: skip


def batch(subjects: list[str | None], served_in: str) -> Event:
    return event(PredictionBatch, DAY1, batch_id="b", model_name="public-model",
                 model_version="1", location=loc(served_in), count=len(subjects),
                 subject_jurisdictions=subjects, scores=[0.5] * len(subjects),
                 latency_ms=1.0)  # fmt: skip


def judged(state: dict[str, Any], *events: Event) -> list[list[tuple[str, str, str]]]:
    return [
        [(d.rule_id, d.decision, d.facts["from"]) for d in ENGINE.evaluate(e, state)]
        for e in events
    ]


def test_eu_residents_served_from_a_third_country_by_a_model_trained_on_public_data() -> None:
    state: dict[str, Any] = {}
    prediction = single("DE", "IN")
    decisions = ENGINE.evaluate(prediction, state)
    assert [(d.rule_id, d.decision) for d in decisions] == [("EU-3RD", "deny")]
    facts = decisions[0].facts
    assert (facts["hop"], facts["from"], facts["to"]) == ("prediction-subject", "EEA", "IN")
    assert facts["via"].startswith("model:public-model:1 <- subjects:DE")
    assert decisions[0].evidence == (str(prediction.envelope.event_id),)


def test_once_per_model_subject_jurisdiction_serving_country_and_day() -> None:
    state: dict[str, Any] = {}
    assert judged(state, single("DE", "IN"), single("DE", "IN"), single("DE", "IN", DAY2)) == [
        [("EU-3RD", "deny", "EEA")], [], [("EU-3RD", "deny", "EEA")],
    ]  # fmt: skip
    assert judged(state, single("FR", "IN")) == [[("EU-3RD", "deny", "EEA")]]  # new that day


def test_subjects_served_where_they_are_or_where_their_data_may_go_are_not_judged() -> None:
    state: dict[str, Any] = {}
    assert judged(state, single("DE", "DE"), single("DE", "FR"), single(None, "IN")) == [
        [], [], [],
    ]  # fmt: skip
    assert judged(state, single("DE", "CH")) == [[]]  # adequacy: nothing more needed
    assert judged(state, single("US", "IN")) == [[]]  # no regime of the pack restricts it


def test_a_batch_of_eea_residents_raises_one_decision_per_rule_not_one_per_member_state() -> None:
    state: dict[str, Any] = {}
    decisions = ENGINE.evaluate(batch(["DE", "DE", "FR", None, "IN", "IT"], "IN"), state)
    assert [(d.rule_id, d.facts["from"]) for d in decisions] == [("EU-3RD", "EEA")]
    assert "subjects:DE,FR,IT" in decisions[0].facts["via"]
    assert ENGINE.evaluate(batch(["FR", "DE"], "IN"), state) == []


def test_each_regime_judges_its_own_subjects_once() -> None:
    decisions = ENGINE.evaluate(batch(["DE", "KR", "FR", "KR"], "US"), {})
    assert sorted((d.rule_id, d.facts["from"]) for d in decisions) == [
        ("EU-US", "EEA"), ("KR-XFER", "KR"),
    ]  # fmt: skip


def test_the_pack_can_turn_subject_judging_off() -> None:
    policy = load_policy().model_copy(update={"judge_prediction_subjects": False})
    assert PolicyEngine(policy).evaluate(single("DE", "IN"), {}) == []
