"""Table-driven scenarios, one per rule of the default pack and per inheritance path."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from auditline.errors import PolicyError
from auditline.events import (
    ZERO_HASH,
    AssetDeclared,
    DataMovement,
    Envelope,
    Event,
    Location,
    ModelDeployed,
    Party,
    Prediction,
    ProducerInfo,
    TrainingRun,
)
from auditline.policy.engine import PolicyEngine
from auditline.policy.model import load_policy

ENGINE = PolicyEngine(load_policy())
WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PRODUCER = ProducerInfo(service="s", instance="i", location=Location(country="DE"))
EXPORTER = Party(entity_id="acme-eu", name="ACME EU", role="controller", country="DE")


def loc(country: str) -> Location:
    return Location(country=country)


def importer(country: str, dpf: str | None = None, as_of: date = date(2026, 1, 10)) -> Party:
    certs = [{"scheme": "EU-US-DPF", "status": dpf, "as_of": as_of}] if dpf else []
    return Party(
        entity_id=f"imp-{country}",
        name="Importer",
        role="processor",
        country=country,
        certifications=certs,
    )


def event(model: type[Event], when: datetime = WHEN, **body: Any) -> Event:
    envelope = Envelope(event_id=uuid4(), event_time=when, producer=PRODUCER, stream="s",
                        sequence=0, prev_hash=ZERO_HASH, hash=ZERO_HASH)  # fmt: skip
    return model(envelope=envelope, **body)


def asset(asset_id: str, country: str = "DE", cls: str = "personal", **extra: Any) -> Event:
    body = {"asset_id": asset_id, "asset_kind": "dataset", "name": asset_id, "owner": "o",
            "classification": cls, "location": loc(country), "origin_jurisdictions": ("EEA",) if country in ("DE", "FR") else (country,)}  # fmt: skip
    return event(AssetDeclared, **{**body, **extra})


def move(asset_id: str, dst: str, src: str = "DE", when: datetime = WHEN, **extra: Any) -> Event:
    body = {"asset_id": asset_id, "operation": "copy", "source": loc(src), "destination": loc(dst),
            "records": 10, "bytes": 10, "purpose": "analytics", "exporter": EXPORTER, "importer": importer(dst)}  # fmt: skip
    return event(DataMovement, when, **{**body, **extra})


def run(state: dict[str, Any], *events: Event) -> list[list[tuple[str, str]]]:
    return [[(d.rule_id, d.decision) for d in ENGINE.evaluate(e, state)] for e in events]


SCC = {
    "kind": "scc",
    "mechanism_id": "scc-1",
    "module": "c2p",
    "tia_review_date": date(2026, 12, 1),
}


@pytest.mark.parametrize(
    ("name", "movement", "expected"),
    [
        ("EU to an adequate country", move("ds", "CH"), []),
        ("EU to the UK within its renewed decision", move("ds", "GB"), []),
        (
            "EU to the UK after the decision expires",
            move("ds", "GB", when=datetime(2032, 1, 5, tzinfo=UTC)),
            [("EU-3RD", "deny")],
        ),
        (
            "EU to Brazil before its decision",
            move("ds", "BR", when=datetime(2026, 1, 10, tzinfo=UTC)),
            [("EU-3RD", "deny")],
        ),
        (
            "EU to Brazil after its decision",
            move("ds", "BR", when=datetime(2026, 2, 1, tzinfo=UTC)),
            [],
        ),
        ("EU to US, DPF active", move("ds", "US", importer=importer("US", "active")), []),
        (
            "EU to US, DPF lapsed, no SCC",
            move("ds", "US", importer=importer("US", "lapsed")),
            [("EU-US", "deny")],
        ),
        (
            "EU to US, DPF certificate stale",
            move("ds", "US", importer=importer("US", "active", date(2024, 1, 1))),
            [("EU-US", "deny")],
        ),
        (
            "EU to US, DPF lapsed, valid SCC",
            move("ds", "US", importer=importer("US", "lapsed"), mechanism=SCC),
            [],
        ),
        (
            "EU to Canada: partial adequacy",
            move("ds", "CA"),
            [("EU-ADEQ", "allow_with_obligations")],
        ),
        ("EU to a third country, nothing", move("ds", "SG"), [("EU-3RD", "deny")]),
        ("EU to a third country on SCC", move("ds", "SG", mechanism=SCC), []),
        (
            "SCC with an expired TIA review",
            move("ds", "SG", mechanism={**SCC, "tia_review_date": date(2026, 1, 1)}),
            [("EU-3RD", "alert")],
        ),
        (
            "SCC expired",
            move("ds", "SG", mechanism={**SCC, "valid_until": date(2025, 1, 1)}),
            [("EU-3RD", "deny")],
        ),
        (
            "onward transfer without clause",
            move("ds", "SG", mechanism=SCC, onward_of="e1"),
            [("EU-ONWARD", "alert")],
        ),
        (
            "sub-processor abroad without clause",
            move("ds", "SG", mechanism=SCC, sub_processors=[importer("IN")]),
            [("EU-ONWARD", "alert")],
        ),
        (
            "onward with clause",
            move("ds", "SG", mechanism={**SCC, "onward_clause": True}, onward_of="e1"),
            [],
        ),
        (
            "purpose outside the collection purposes",
            move("ds", "FR", purpose="marketing"),
            [("PUR-COMPAT", "alert")],
        ),
        ("within the EEA", move("ds", "FR"), []),
    ],
)
def test_eu_transfers(name: str, movement: Event, expected: list[tuple[str, str]]) -> None:
    state: dict[str, Any] = {}
    assert run(state, asset("ds", collection_purposes=("analytics",)), movement) == [
        [],
        expected,
    ], name


def test_special_category_on_scc_needs_supplementary_measures() -> None:
    state: dict[str, Any] = {}
    plain = move("ds", "SG", mechanism=SCC)
    measured = move("ds", "SG", mechanism={**SCC, "supplementary_measures": ["eea_held_keys"]})
    assert run(state, asset("ds", cls="special_category"), plain, measured) == [
        [],
        [("EU-ART9", "alert")],
        [],
    ]


def test_occasional_derogation_turns_into_an_alert_when_repetitive() -> None:
    state: dict[str, Any] = {}
    derogation = {"kind": "derogation", "occasional": True}
    results = run(state, asset("ds"), *[move("ds", "SG", mechanism=derogation) for _ in range(4)])
    assert results == [[], [], [], [], [("EU-3RD", "alert")]]
    assert run(state, move("ds", "SG", mechanism={"kind": "derogation"})) == [[("EU-3RD", "deny")]]


def test_china_volume_thresholds_crossed_mid_year() -> None:
    state: dict[str, Any] = {}
    cn = asset("cn", country="CN", cls="personal", origin_jurisdictions=("CN",))
    batch = lambda n, **kw: move("cn", "SG", src="CN", distinct_subjects=n, **kw)  # noqa: E731
    contract = {"kind": "cn_standard_contract", "mechanism_id": "cac-sc-1"}
    assert run(state, cn, batch(60_000), batch(50_000), batch(50_000, mechanism=contract)) == [
        [],
        [],
        [("CN-CONTRACT", "alert")],
        [],
    ]
    assert run(state, batch(900_000, mechanism=contract)) == [[("CN-ASSESS", "deny")]]
    assert state["cn:acme-eu:2026"]["personal"] == 1_060_000
    next_year = move(
        "cn", "SG", src="CN", distinct_subjects=1000, when=datetime(2027, 1, 2, tzinfo=UTC)
    )
    assert run(state, next_year) == [[]]  # counters restart on 1 January


def test_china_sensitive_and_important_data() -> None:
    state: dict[str, Any] = {}
    sensitive = asset("s", country="CN", cls="cn_sensitive", origin_jurisdictions=("CN",))
    important = asset("i", country="CN", cls="cn_important", origin_jurisdictions=("CN",))
    assessment = {"kind": "cn_security_assessment", "mechanism_id": "cac-1"}
    assert run(state, sensitive, move("s", "SG", src="CN", distinct_subjects=500)) == [
        [],
        [("CN-CONTRACT", "alert")],
    ]
    assert run(state, move("s", "SG", src="CN", distinct_subjects=20_000)) == [
        [("CN-ASSESS", "deny")]
    ]
    assert run(
        state, important, move("i", "SG", src="CN", distinct_subjects=1, mechanism=assessment)
    ) == [[], []]


def test_russian_citizens_data() -> None:
    state: dict[str, Any] = {}
    abroad = asset("ru", country="DE", subject_citizenships=("RU",))
    at_home = asset("ru2", country="RU", subject_citizenships=("RU",), origin_jurisdictions=("RU",))
    notified = {"kind": "ru_notification", "mechanism_id": "rkn-123"}
    assert run(state, abroad) == [[("RU-LOCAL", "deny")]]
    assert run(
        state, at_home, move("ru2", "DE", src="RU"), move("ru2", "DE", src="RU", mechanism=notified)
    ) == [[], [("RU-NOTIFY", "deny")], []]


def test_payment_data_leaving_india() -> None:
    state: dict[str, Any] = {}
    pay = asset("pay", country="IN", cls="payment", origin_jurisdictions=("IN",))
    assert run(state, pay, move("pay", "SG", src="IN"), move("pay", "IN", src="IN")) == [
        [],
        [("IN-PAY", "deny")],
        [],
    ]


def test_residency_pin_follows_the_data_into_models_and_predictions() -> None:
    state: dict[str, Any] = {}
    pinned = asset("ds", residency=("DE",), collection_purposes=("analytics",))
    copy = move("ds", "DE", target_asset_id="ds-copy")
    copy_out = move(
        "ds", "US", target_asset_id="ds-us", mechanism=SCC, importer=importer("US", "active")
    )
    started = event(TrainingRun, run_id="r1", status="started", model_name="m", inputs=("ds-us",),
                    code_version="c", location=loc("US"), purpose="analytics")  # fmt: skip
    done = event(TrainingRun, run_id="r1", status="completed", model_name="m", model_version="1",
                 inputs=("ds-us",), code_version="c", location=loc("US"), purpose="analytics")  # fmt: skip
    deployed = event(
        ModelDeployed,
        deployment_id="d1",
        model_name="m",
        model_version="1",
        status="deployed",
        location=loc("SG"),
    )

    def prediction() -> Event:
        return event(
            Prediction,
            prediction_id="p",
            model_name="m",
            model_version="1",
            location=loc("SG"),
            latency_ms=1.0,
        )

    results = [
        ENGINE.evaluate(e, state)
        for e in (pinned, copy, copy_out, started, done, deployed, prediction(), prediction())
    ]
    kinds = [[(d.rule_id, d.decision, d.facts["hop"]) for d in r] for r in results]
    assert kinds[:3] == [[], [], [("RES-PIN", "deny", "movement")]]
    assert kinds[3] == [("RES-PIN", "deny", "training")]
    assert kinds[4] == []
    assert ("RES-PIN", "deny", "serving") in kinds[5] and ("EU-3RD", "deny", "serving") in kinds[5]
    assert ("RES-PIN", "deny", "prediction") in kinds[6]
    assert kinds[7] == []  # once per model, country and day: no alert storm
    origin = str(pinned.envelope.event_id)
    for hop in (results[2], results[3], results[5], results[6]):
        assert all(d.evidence[0] == origin for d in hop), (
            "evidence points to the original asset event"
        )
    serving = next(d for d in results[5] if d.rule_id == "RES-PIN")
    assert serving.facts["via"] == "model:m:1 <- ds-us <- ds"
    assert len({d.decision_id for r in results for d in r}) == sum(len(r) for r in results)


def test_derived_dataset_inherits_the_strictest_constraints() -> None:
    state: dict[str, Any] = {}
    events = [asset("a", residency=("DE", "FR")), asset("b", cls="special_category", country="FR"),
              asset("ab", country="FR", cls="internal", derived_from=("a", "b"))]  # fmt: skip
    assert run(state, *events) == [[], [], []]
    inherited = ENGINE.constraints(state, "asset:ab")
    assert inherited is not None and inherited.classification == "special_category"
    assert inherited.allowed_in("FR") and not inherited.allowed_in("US")
    assert [rid for rid, _ in run(state, move("ab", "SG", src="FR"))[0]] == ["RES-PIN", "EU-3RD"]


def test_bad_policy_file_names_file_line_and_fix(tmp_path: Path) -> None:
    text = (Path(load_policy.__globals__["default_policy_path"]())).read_text()
    broken = tmp_path / "policy.yaml"
    broken.write_text(
        text.replace(
            '{id: IN-PAY, version: "1", severity: critical}',
            '{id: IN-PAYX, version: "1", severity: critical}',
        )
    )
    with pytest.raises(
        PolicyError, match=r"policy\.yaml:\d+: rules\.\d+\.id: .*unknown rule 'IN-PAYX'"
    ):
        load_policy(broken)
    bad_date = tmp_path / "dates.yaml"
    bad_date.write_text(text.replace("effective_from: 2026-01-26", "effective_from: someday"))
    with pytest.raises(PolicyError, match=r"dates\.yaml:\d+: adequacy\.\d+\.effective_from"):
        load_policy(bad_date)
    (tmp_path / "bad.yaml").write_text("rules: [\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml:\d+: not valid YAML"):
        load_policy(tmp_path / "bad.yaml")


def test_a_replayed_event_is_counted_once() -> None:
    state: dict[str, Any] = {}
    cn = asset("cn", country="CN", cls="personal", origin_jurisdictions=("CN",))
    movement = move("cn", "SG", src="CN", distinct_subjects=60_000)
    run(state, cn, movement, movement)
    assert state["cn:acme-eu:2026"]["personal"] == 60_000


APPROVED = {"method": "aggregation to k >= 20", "approved_by": "dpo@acme.example",
            "evidence_uri": "https://dpo.acme.example/assessments/17"}  # fmt: skip


def test_an_approved_declassification_releases_inherited_constraints() -> None:
    state: dict[str, Any] = {}
    pinned = asset("ds", residency=("DE",))
    aggregate = asset("ds-agg", country="US", cls="aggregate", derived_from=("ds",),
                      origin_jurisdictions=(), declassification=APPROVED)  # fmt: skip
    trained = event(TrainingRun, run_id="r", status="started", model_name="m", inputs=("ds-agg",),
                    code_version="c", location=loc("SG"), purpose="analytics")  # fmt: skip
    assert run(state, pinned) == [[]]
    released = ENGINE.evaluate(aggregate, state)
    assert [(d.rule_id, d.decision, d.severity) for d in released] == [
        ("DECLASS", "allow_with_obligations", "info")
    ]
    assert released[0].evidence == (str(pinned.envelope.event_id), str(aggregate.envelope.event_id))
    assert released[0].facts["inherited_pins"] == "DE" and released[0].facts["method"]
    assert run(state, move("ds-agg", "SG", src="US"), trained) == [[], []]


def test_a_declassification_that_keeps_personal_data_releases_nothing() -> None:
    state: dict[str, Any] = {}
    run(state, asset("ds", residency=("DE",)))
    pseudonymised = asset("ds-p", country="US", cls="pseudonymised", derived_from=("ds",),
                          declassification=APPROVED)  # fmt: skip
    assert run(state, pseudonymised) == [[("DECLASS", "alert"), ("RES-PIN", "deny")]]


def test_derived_data_without_declassification_keeps_the_pin() -> None:
    state: dict[str, Any] = {}
    run(state, asset("ds", residency=("DE",)))
    derived = asset("ds-agg", country="US", cls="aggregate", derived_from=("ds",))
    assert run(state, derived) == [[("RES-PIN", "deny")]]


def test_a_narrower_redeclaration_cannot_launder_an_asset() -> None:
    state: dict[str, Any] = {}
    pinned = asset("ds", residency=("DE",))
    loosened = asset("ds", cls="internal")  # same asset, no pin, weaker class, no declassification
    assert run(state, pinned, loosened, pinned) == [[], [("DECLASS", "alert")], []]
    assert run(state, move("ds", "US"))[0][0] == ("RES-PIN", "deny")
    constraints = ENGINE.constraints(state, "asset:ds")
    assert constraints is not None and constraints.classification == "personal"


def test_china_contract_band_alerts_within_the_grace_then_denies() -> None:
    state: dict[str, Any] = {}
    cn = asset("cn", country="CN", cls="personal", origin_jurisdictions=("CN",))
    day = lambda d: datetime(2026, 3, d, 9, tzinfo=UTC)  # noqa: E731
    batch = lambda n, d: move("cn", "SG", src="CN", distinct_subjects=n, when=day(d))  # noqa: E731
    results = [ENGINE.evaluate(e, state) for e in (cn, batch(150_000, 2), batch(10, 12),
                                                      batch(10, 13))]  # fmt: skip
    assert [[(d.rule_id, d.decision) for d in r] for r in results] == [
        [], [("CN-CONTRACT", "alert")], [("CN-CONTRACT", "alert")], [("CN-CONTRACT", "deny")],
    ]  # fmt: skip
    assert results[3][0].facts["band_since"] == "2026-03-02"


def test_russian_transfers_to_a_restricted_importer_are_denied(tmp_path: Path) -> None:
    text = (Path(load_policy.__globals__["default_policy_path"]())).read_text()
    custom = tmp_path / "policy.yaml"
    custom.write_text(text.replace("restricted_importers: []", "restricted_importers: [imp-DE]"))
    engine = PolicyEngine(load_policy(custom))
    state: dict[str, Any] = {}
    ru = asset("ru", country="RU", subject_citizenships=("RU",), origin_jurisdictions=("RU",))
    notified = {"kind": "ru_notification", "mechanism_id": "rkn-123"}
    decisions = [
        [(d.rule_id, d.decision, d.facts.get("restricted")) for d in engine.evaluate(e, state)]
        for e in (ru, move("ru", "DE", src="RU", mechanism=notified),
                  move("ru", "FR", src="RU", mechanism=notified))
    ]  # fmt: skip
    assert decisions == [[], [("RU-NOTIFY", "deny", "importer")], []]


@pytest.mark.parametrize(
    ("clauses", "when", "expected"),
    [
        ({"module": "c2p"}, datetime(2026, 3, 2, tzinfo=UTC), []),
        ({"module": "uk_addendum"}, datetime(2026, 3, 2, tzinfo=UTC), []),
        (
            {"module": "2010/87", "signed_on": date(2019, 1, 1)},
            datetime(2022, 12, 27, tzinfo=UTC),
            [],
        ),
        (
            {"module": "2010/87", "signed_on": date(2019, 1, 1)},
            datetime(2022, 12, 28, tzinfo=UTC),
            [("EU-3RD", "deny")],
        ),
        (
            {"module": "legacy", "signed_on": date(2021, 10, 1)},  # concluded after 26 Sep 2021
            datetime(2022, 6, 1, tzinfo=UTC),
            [("EU-3RD", "deny")],
        ),
        ({"module": "idta"}, datetime(2026, 3, 2, tzinfo=UTC), [("EU-3RD", "deny")]),
        ({"module": "br_specific"}, datetime(2026, 3, 2, tzinfo=UTC), [("EU-3RD", "deny")]),
    ],
)
def test_only_the_eus_own_valid_clauses_are_a_safeguard_for_eea_data(
    clauses: dict[str, Any], when: datetime, expected: list[tuple[str, str]]
) -> None:
    """Decision 2021/914: its modules from 27 Jun 2021; the repealed clauses only if concluded
    by 26 Sep 2021 and only until 27 Dec 2022; other countries' clauses are no EU SCCs."""
    state: dict[str, Any] = {}
    mechanism = {**SCC, **clauses, "tia_review_date": date(2030, 1, 1)}
    results = run(state, asset("ds"), move("ds", "SG", when=when, mechanism=mechanism))
    assert results[1] == expected


@pytest.mark.parametrize(
    ("personal", "sensitive", "expected"),
    [
        (99_999, 0, []),
        (100_000, 0, [("CN-CONTRACT", "alert")]),  # "100,000 people or more" (以上)
        (999_999, 0, [("CN-CONTRACT", "alert")]),
        (1_000_000, 0, [("CN-ASSESS", "deny")]),  # "1,000,000 or more"
        (0, 9_999, [("CN-CONTRACT", "alert")]),
        (0, 10_000, [("CN-ASSESS", "deny")]),
    ],
)
def test_china_thresholds_count_the_number_itself(
    personal: int, sensitive: int, expected: list[tuple[str, str]]
) -> None:
    """Provisions on Promoting and Regulating Cross-Border Data Flows (22 Mar 2024), Arts. 7-8:
    以上 ("or more") includes the number itself."""
    cls = "cn_sensitive" if sensitive else "personal"
    cn = asset("cn", country="CN", cls=cls, origin_jurisdictions=("CN",))
    state: dict[str, Any] = {}
    move_ = move("cn", "SG", src="CN", distinct_subjects=personal or sensitive)
    assert run(state, cn, move_)[1] == expected
