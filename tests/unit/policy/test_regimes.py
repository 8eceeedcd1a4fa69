"""Table-driven scenarios for the regimes beyond the EU's (UK, CH, SA, JP, KR, BR, India's DPDP).

Each row is written from the source the pack cites for the fact it tests (``sources`` in
auditline/policy/default.yaml; docs/policy.md, "More regimes"); boundary rows check the day
before and the day a fact takes effect. Engineering reference, not legal advice.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from auditline.errors import PolicyError
from auditline.events import AssetDeclared, DataMovement, Party, Prediction
from auditline.policy.decisions import Decision
from auditline.policy.engine import PolicyEngine
from auditline.policy.model import REGIME_RULES, RULE_IDS, Policy, load_policy
from tests.unit.policy.test_scenarios import event, loc

POLICY = load_policy()
ENGINE = PolicyEngine(POLICY)
DAY = date(2026, 3, 2)


def importer(country: str, *certs: tuple[str, str], as_of: date = date(2023, 10, 1)) -> Party:
    """An importer holding ``certs`` ((scheme, status) pairs) checked on ``as_of``."""
    return Party(entity_id=f"imp-{country}", name="Importer", role="processor", country=country,
                 certifications=[{"scheme": s, "status": st, "as_of": as_of} for s, st in certs])  # fmt: skip


def mech(kind: str, module: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "mechanism_id": f"{kind}-1", "module": module, **extra}


TRA = {"tia_review_date": date(2099, 1, 1)}  # a transfer (risk) assessment on record


def decide(
    src: str,
    dst: str,
    day: date = DAY,
    mechanism: dict[str, Any] | None = None,
    to: Party | None = None,
    engine: PolicyEngine = ENGINE,
    **asset: Any,
) -> list[Decision]:
    """The decisions on moving personal data of origin ``src`` (stored there) to ``dst``."""
    when = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    declared = event(AssetDeclared, when, **{
        "asset_id": "ds", "asset_kind": "dataset", "name": "ds", "owner": "o",
        "classification": "personal", "location": loc(src), "origin_jurisdictions": (src,),
        **asset,
    })  # fmt: skip
    movement = event(DataMovement, when, asset_id="ds", operation="copy", source=loc(src),
                     destination=loc(dst), records=10, bytes=10, purpose="analytics",
                     exporter=Party(entity_id="exp", name="Exporter", role="controller",
                                    country=src),
                     importer=to or importer(dst), mechanism=mechanism)  # fmt: skip
    state: dict[str, Any] = {}
    assert engine.evaluate(declared, state) == []
    return engine.evaluate(movement, state)


def judge(*args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    return [(d.rule_id, d.decision) for d in decide(*args, **kwargs)]


def rows(*cases: tuple[Any, ...]) -> Any:
    return pytest.mark.parametrize(
        ("name", "args", "expected"), cases, ids=[case[0] for case in cases]
    )


UK_DPF = ("UK-US-DPF", "active")
EU_DPF = ("EU-US-DPF", "active")
SWISS_DPF = ("SWISS-US-DPF", "active")
LEGACY = {"signed_on": date(2022, 9, 1), **TRA}


@rows(
    ("to an EEA state", ("GB", "FR"), []),
    ("to Switzerland", ("GB", "CH"), []),
    ("to Korea the day before SI 2022/1213", ("GB", "KR", date(2022, 12, 18)), [("UK-XFER", "deny")]),
    ("to Korea the day SI 2022/1213 took effect", ("GB", "KR", date(2022, 12, 19)), []),
    ("to a DPF importer with the UK Extension the day before the data bridge",
     ("GB", "US", date(2023, 10, 11), None, importer("US", UK_DPF)), [("UK-XFER", "deny")]),
    ("to a DPF importer with the UK Extension the day the data bridge took effect",
     ("GB", "US", date(2023, 10, 12), None, importer("US", UK_DPF)), []),
    ("to a DPF importer without the UK Extension",
     ("GB", "US", DAY, None, importer("US", EU_DPF, as_of=date(2026, 1, 5))), [("UK-US", "deny")]),
    ("to the US on the Addendum with a transfer risk assessment",
     ("GB", "US", DAY, mech("scc", "uk_addendum", **TRA)), []),
    ("IDTA without a transfer risk assessment",
     ("GB", "SG", DAY, mech("scc", "idta")), [("UK-TRA", "alert")]),
    ("to a third country, nothing", ("GB", "SG"), [("UK-XFER", "deny")]),
    ("2021 EU SCCs without the UK Addendum", ("GB", "SG", DAY, mech("scc", "c2p", **TRA)),
     [("UK-XFER", "deny")]),
    ("Addendum the day before the IDTA and Addendum came into force",
     ("GB", "SG", date(2022, 3, 20), mech("scc", "uk_addendum", **TRA)), [("UK-XFER", "deny")]),
    ("Addendum the day they came into force",
     ("GB", "SG", date(2022, 3, 21), mech("scc", "uk_addendum", **TRA)), []),
    ("legacy SCCs signed by 21 Sep 2022, used on 20 Mar 2024",
     ("GB", "SG", date(2024, 3, 20), mech("scc", "2010/87", **LEGACY)), []),
    ("legacy SCCs signed by 21 Sep 2022, used on 21 Mar 2024",
     ("GB", "SG", date(2024, 3, 21), mech("scc", "2010/87", **LEGACY)), [("UK-XFER", "deny")]),
    ("legacy SCCs signed after 21 Sep 2022",
     ("GB", "SG", date(2023, 1, 10), mech("scc", "legacy", signed_on=date(2022, 10, 1), **TRA)),
     [("UK-XFER", "deny")]),
    ("to Canada: partial adequacy", ("GB", "CA"), [("UK-ADEQ", "allow_with_obligations")]),
    ("occasional derogation", ("GB", "SG", DAY, mech("derogation", occasional=True)), []),
    ("derogation not occasional", ("GB", "SG", DAY, mech("derogation")), [("UK-XFER", "deny")]),
)  # fmt: skip
def test_uk_gdpr(name: str, args: tuple[Any, ...], expected: list[tuple[str, str]]) -> None:
    assert judge(*args) == expected, name


@rows(
    ("to an EEA state", ("CH", "DE"), []),
    ("to the UK", ("CH", "GB"), []),
    ("to Japan, not on DPO Annex 1", ("CH", "JP"), [("CH-XFER", "deny")]),
    ("before the revised FADP", ("CH", "SG", date(2023, 8, 31)), []),
    ("the day the revised FADP came into force", ("CH", "SG", date(2023, 9, 1)),
     [("CH-XFER", "deny")]),
    ("to a Swiss-US DPF importer the day before the Annex 1 amendment",
     ("CH", "US", date(2024, 9, 14), None, importer("US", SWISS_DPF, as_of=date(2024, 9, 1))),
     [("CH-XFER", "deny")]),
    ("to a Swiss-US DPF importer the day the amendment took effect",
     ("CH", "US", date(2024, 9, 15), None, importer("US", SWISS_DPF, as_of=date(2024, 9, 1))),
     []),
    ("to an EU-US DPF importer without the Swiss framework",
     ("CH", "US", DAY, None, importer("US", EU_DPF, as_of=date(2026, 1, 5))),
     [("CH-US", "deny")]),
    ("to the US on clauses recognised by the FDPIC", ("CH", "US", DAY, mech("scc")), []),
    ("to Canada: partial adequacy", ("CH", "CA"), [("CH-ADEQ", "allow_with_obligations")]),
    ("explicit consent", ("CH", "SG", DAY, mech("consent")), []),
)  # fmt: skip
def test_swiss_fadp(name: str, args: tuple[Any, ...], expected: list[tuple[str, str]]) -> None:
    assert judge(*args) == expected, name


@rows(
    ("within the PDPL's year of grace", ("SA", "AE", date(2024, 9, 13)), []),
    ("no safeguard", ("SA", "AE", date(2024, 9, 14)), [("SA-XFER", "deny")]),
    ("to the EEA: no adequacy list published", ("SA", "DE"), [("SA-XFER", "deny")]),
    ("SCCs with a risk assessment", ("SA", "AE", DAY, mech("scc", **TRA)), []),
    ("binding common rules without a risk assessment", ("SA", "AE", DAY, mech("bcr")),
     [("SA-RISK", "alert")]),
    ("certificate of accreditation", ("SA", "US", DAY, mech("certification", **TRA)), []),
    ("binding code of conduct, dropped by the 2024 amendment before the grace ended",
     ("SA", "AE", date(2024, 9, 14), mech("code_of_conduct", **TRA)), [("SA-XFER", "deny")]),
)  # fmt: skip
def test_saudi_pdpl(name: str, args: tuple[Any, ...], expected: list[tuple[str, str]]) -> None:
    assert judge(*args) == expected, name


@rows(
    ("to an EEA state", ("JP", "DE"), []),
    ("to the UK", ("JP", "GB"), []),
    ("to the US, nothing", ("JP", "US"), [("JP-XFER", "deny")]),
    ("to Korea, not designated", ("JP", "KR"), [("JP-XFER", "deny")]),
    ("consent", ("JP", "US", DAY, mech("consent")), []),
    ("equivalent-measures system by contract", ("JP", "US", DAY, mech("scc")), []),
    ("recipient certified (APEC CBPR)", ("JP", "SG", DAY, mech("certification")), []),
    ("an Art. 27(1) case", ("JP", "SG", DAY, mech("derogation")), []),
)  # fmt: skip
def test_japan_appi(name: str, args: tuple[Any, ...], expected: list[tuple[str, str]]) -> None:
    assert judge(*args) == expected, name


@rows(
    ("to the EEA the day before the PIPC's recognition", ("KR", "DE", date(2025, 9, 15)),
     [("KR-XFER", "deny")]),
    ("to the EEA the day it took effect", ("KR", "DE", date(2025, 9, 16)), []),
    ("to the UK, not recognised", ("KR", "GB"), [("KR-XFER", "deny")]),
    ("SCCs are no Art. 28-8 ground", ("KR", "US", DAY, mech("scc", **TRA)), [("KR-XFER", "deny")]),
    ("separate consent", ("KR", "US", DAY, mech("consent")), []),
    ("certification notified by the PIPC", ("KR", "US", DAY, mech("certification")), []),
    ("entrustment needed for a contract, disclosed", ("KR", "US", DAY, mech("derogation")), []),
    ("before Art. 28-8", ("KR", "US", date(2023, 9, 14)), []),
)  # fmt: skip
def test_korea_pipa(name: str, args: tuple[Any, ...], expected: list[tuple[str, str]]) -> None:
    assert judge(*args) == expected, name


@rows(
    ("SCCs (not the ANPD's) the day before the ANPD clauses are due",
     ("BR", "US", date(2025, 8, 22), mech("scc", "c2p")), []),
    ("SCCs (not the ANPD's) the day the ANPD clauses are due",
     ("BR", "US", date(2025, 8, 23), mech("scc", "c2p")), [("BR-XFER", "deny")]),
    ("ANPD standard clauses", ("BR", "US", date(2025, 8, 23), mech("anpd_clauses")), []),
    ("specific clauses approved by the ANPD", ("BR", "US", DAY, mech("scc", "br_specific")), []),
    ("no mechanism", ("BR", "US"), [("BR-XFER", "deny")]),
    ("to the EEA the day before Res. 32/2026 was published", ("BR", "DE", date(2026, 1, 26)),
     [("BR-XFER", "deny")]),
    ("to the EEA the day it was published", ("BR", "DE", date(2026, 1, 27)), []),
    ("before Res. 19/2024", ("BR", "US", date(2024, 8, 22)), []),
    ("global corporate rules", ("BR", "US", DAY, mech("bcr")), []),
)  # fmt: skip
def test_brazil_lgpd(name: str, args: tuple[Any, ...], expected: list[tuple[str, str]]) -> None:
    assert judge(*args) == expected, name


def test_brazil_deny_says_until_when_other_clauses_were_accepted() -> None:
    [decision] = decide("BR", "US", date(2025, 8, 23), mech("scc", "c2p"))
    assert "accepted only until 2025-08-22" in decision.message
    assert decision.facts["regime"] == "BR" and decision.severity == "high"
    assert decision.mechanism_ids == ("scc-1",)


def test_partial_adequacy_names_its_obligation() -> None:
    [decision] = decide("CH", "CA")
    assert decision.severity == "info" and decision.facts["scope"] == "commercial"
    assert "imp-CA" in decision.obligations[0] and "DPO Annex 1" in decision.obligations[0]


def test_india_dpdp_denies_only_notified_countries_once_section_16_is_in_force(
    tmp_path: Path,
) -> None:
    assert judge("IN", "SG", date(2027, 6, 1)) == []
    assert judge("IN", "SG", DAY, classification="payment") == [("IN-PAY", "deny")]
    restricted = pack(tmp_path, "    restricted: []", "    restricted:\n      - {country: CN, "
                      "effective_from: 2027-06-01, reference: 'S.O. (example)', "
                      "source: in-dpdp-act}")  # fmt: skip
    engine = PolicyEngine(restricted)
    assert judge("IN", "CN", date(2027, 5, 31), engine=engine) == []
    assert judge("IN", "CN", date(2027, 6, 1), engine=engine) == [("IN-DPDP", "deny")]
    assert judge("IN", "SG", date(2027, 6, 1), engine=engine) == []


def test_several_regimes_judge_one_hop() -> None:
    """EEA data held in the UK and sent to Singapore on 2021 EU SCCs: enough for the GDPR, not
    for the UK GDPR, which wants the Addendum."""
    both = ("EEA", "GB")
    assert judge("GB", "SG", DAY, mech("scc", "c2p", **TRA), origin_jurisdictions=both) == [
        ("UK-XFER", "deny")
    ]
    assert (
        judge("GB", "SG", DAY, mech("scc", "uk_addendum", **TRA), origin_jurisdictions=both) == []
    )


def test_a_disabled_rule_is_not_judged(tmp_path: Path) -> None:
    text = '{id: UK-XFER, version: "1", severity: high}'
    quiet = pack(tmp_path, text, text.replace("}", ", enabled: false}"))
    assert judge("GB", "SG", engine=PolicyEngine(quiet)) == []
    assert judge("GB", "SG") == [("UK-XFER", "deny")]


def test_a_prediction_about_a_korean_resident_is_judged_by_pipa() -> None:
    """Issue 14.3's prediction-subject hop reaches the regimes too."""

    def served(subject: str, where: str) -> list[tuple[str, str]]:
        prediction = event(Prediction, prediction_id="p", model_name="m", model_version="1",
                           location=loc(where), latency_ms=1.0, subject_jurisdiction=subject)  # fmt: skip
        return [(d.rule_id, d.decision) for d in ENGINE.evaluate(prediction, {})]

    assert served("KR", "US") == [("KR-XFER", "deny")]
    assert served("KR", "FR") == []


def test_every_fact_of_the_regimes_names_a_source_read_on_a_date() -> None:
    for key, regime in POLICY.regimes.items():
        assert key in REGIME_RULES
        facts = [regime, *regime.adequacy, *regime.bases, *regime.restricted]
        for fact in facts:
            source = POLICY.sources[fact.source]
            assert source.url.startswith("http") and source.retrieved == date(2026, 12, 1)
            assert fact.reference, (key, fact)
    every_rule = {rule.id for rule in POLICY.rules}
    for ids in REGIME_RULES.values():
        assert {i for i in (ids.transfer, ids.partial, ids.certified, ids.assessment) if i} <= (
            every_rule
        )


DOCS = Path(__file__).resolve().parents[3] / "docs" / "policy.md"
CITED = re.compile(r"\[([a-z0-9-]+(?:, [a-z0-9-]+)*)\](?!\()")  # [key] or [key, key], not a link


def rules_table() -> dict[str, str]:
    """docs/policy.md, "Rules of the default pack": each rule id's row."""
    section = DOCS.read_text().split("## Rules of the default pack", 1)[1]
    rows = (line.split(" | ", 1) for line in section.splitlines() if line.startswith("| "))
    return {
        cells[0][2:]: cells[1] for cells in rows if len(cells) == 2 and cells[0][2:] in RULE_IDS
    }


def test_every_rule_of_the_pack_cites_sources_read_on_a_date() -> None:
    """Issue 14: docs/policy.md lists every rule with its facts' sources (keys of the pack's
    ``sources``, each with its page and retrieval date); the pack's rules cannot name them."""
    rows = rules_table()
    assert set(rows) == set(RULE_IDS) == {rule.id for rule in POLICY.rules}
    known = sorted(POLICY.sources)
    for rule_id, row in rows.items():
        keys = [key for group in CITED.findall(row) for key in group.split(", ")]
        assert keys, f"{rule_id} cites no source"
        for key in keys:
            assert key in known, f"{rule_id} cites {key!r}, not a source of the pack"
            source = POLICY.sources[key]
            assert source.url.startswith("http") and source.retrieved == date(2026, 12, 1)
    text = DOCS.read_text()
    for key in POLICY.sources:  # and every source of the pack is listed with its facts
        assert f"[{key}](" in text, f"source {key!r} is not in the docs' sources tables"


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("source: uk-korea}", "source: nowhere}", r"regimes: .*UK\.adequacy\.14: source 'nowhere'"),
        ("covers: [GB, UK]", "covers: [GB, BRITAIN]", r"UK\.covers: 'BRITAIN' is neither"),
        ("certification: UK-US-DPF, ", "", r"UK\.adequacy\.15: dpf_certified needs"),
        ("kind: derogation, effective_from: 2023-09-15", "kind: derogaton, effective_from: "
         "2023-09-15", r"regimes\.KR\.bases\.2\.kind"),
    ],
)  # fmt: skip
def test_a_bad_regime_names_what_is_missing(tmp_path: Path, old: str, new: str, error: str) -> None:
    with pytest.raises(PolicyError, match=error):
        pack(tmp_path, old, new)


def pack(tmp_path: Path, old: str, new: str) -> Policy:
    text = (Path(load_policy.__globals__["default_policy_path"]())).read_text()
    assert old in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace(old, new, 1))
    return load_policy(path)


def test_the_faroe_islands_are_adequate_for_uk_data() -> None:
    """DPA 2018 Sch. 21 kept the EU's decision 2010/146/EU; the ICO corrected its list's
    omission of the Faroe Islands on 13 Oct 2023."""
    assert judge("GB", "FO", date(2022, 5, 1)) == []
