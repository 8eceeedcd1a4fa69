"""Transfer rules: data (with its constraints) going from one country to another (pure).

Used for data movements and, through lineage, for training on data and serving models: the
same rules judge each hop, so a residency pin or an EU origin follows the data into models and
predictions. Counters (China's yearly volumes, derogation use) live in the state mapping. The
regimes that are data in the pack (UK, Switzerland, Saudi Arabia, Japan, Korea, Brazil, India's
DPDP Act) are judged by ``policy/regimes.py``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from auditline.events import MechanismKind, Party, TransferMechanism
from auditline.policy.constraints import Constraints
from auditline.policy.counters import Shards, total
from auditline.policy.decisions import Decision
from auditline.policy.model import Policy
from auditline.policy.regimes import RegimeRules, certified

RECENT_EVENTS = 1000  # event ids kept per counter so that a replay after a restart counts once
SAFEGUARDS = {
    MechanismKind.SCC,
    MechanismKind.BCR,
    MechanismKind.CODE_OF_CONDUCT,
    MechanismKind.CERTIFICATION,
}


@dataclass(frozen=True)
class Transfer:
    """One hop to judge."""

    event_id: str
    day: date
    to_country: str
    constraints: Constraints
    hop: str = "movement"  # movement | training | serving | prediction
    from_country: str = ""
    mechanism: TransferMechanism | None = None
    exporter: Party | None = None
    importer: Party | None = None
    sub_processors: tuple[Party, ...] = ()
    onward: bool = False
    subjects: int = 0
    purpose: str | None = None
    evidence: tuple[str, ...] = field(default=())
    shard: str = ""  # the counters' shard the judging writer adds to (policy/counters.py)


EU_SCC_2021 = {"c2c", "c2p", "p2p", "p2c", "uk_addendum"}  # Decision 2021/914's modules
EU_SCC_2021_FROM = date(2021, 6, 27)
EU_SCC_OLD = {"2001/497", "2004/915", "2010/87", "legacy"}  # repealed by Decision 2021/914:
OLD_SCC_CONCLUDED_BY, OLD_SCC_UNTIL = date(2021, 9, 26), date(2022, 12, 27)  # its Art. 4


def eu_scc(mechanism: TransferMechanism, day: date) -> bool:
    """Whether SCCs (by ``module``) are the EU's valid on ``day``: the 2021 clauses (a module, the
    UK Addendum to them, or no module named) from 27 Jun 2021; the repealed ones only if
    concluded by 26 Sep 2021 and only until 27 Dec 2022; other clauses (the UK's IDTA, Brazil's
    ANPD clauses ...) are not EU SCCs."""
    module = (mechanism.module or "").lower()
    if not module:
        return True
    if module in EU_SCC_2021:
        return day >= EU_SCC_2021_FROM
    if module in EU_SCC_OLD:
        concluded = mechanism.signed_on is None or mechanism.signed_on <= OLD_SCC_CONCLUDED_BY
        return concluded and day <= OLD_SCC_UNTIL
    return False


def valid(mechanism: TransferMechanism | None, kinds: set[MechanismKind], day: date) -> bool:
    return (
        mechanism is not None
        and mechanism.kind in kinds
        and (mechanism.signed_on is None or mechanism.signed_on <= day)
        and (mechanism.valid_until is None or day <= mechanism.valid_until)
    )


class TransferRules:
    def __init__(self, policy: Policy, shards: Shards | None = None) -> None:
        self.policy = policy
        self.eea = policy.group("EEA")
        self.shards = shards or Shards()
        self.regimes = RegimeRules(policy)

    def judge(self, t: Transfer, state: MutableMapping[str, Any]) -> list[Decision]:
        out: list[Decision] = []
        emit = self._emitter(t, out)
        if not t.constraints.allowed_in(t.to_country):
            pins = " and ".join("/".join(sorted(p)) for p in t.constraints.pins)
            emit("RES-PIN", "deny", f"data pinned to {pins} reaches {t.to_country} ({t.hop})")
        crossing = t.to_country != (t.from_country or t.constraints.location)
        if crossing and self._personal(t):
            self._eu(t, emit, state)
            self._china(t, emit, state)
            self._russia(t, emit)
            self._india(t, emit)
            self.regimes.judge(t, emit)  # UK, CH, SA, JP, KR, BR, India's DPDP: policy/regimes.py
        if t.purpose and t.constraints.purposes and t.purpose not in t.constraints.purposes:
            emit(
                "PUR-COMPAT",
                "alert",
                f"purpose {t.purpose} is not among the collection purposes "
                f"({', '.join(sorted(t.constraints.purposes))}): record a compatibility assessment",
            )
        return out

    def _emitter(self, t: Transfer, out: list[Decision]) -> Callable[..., None]:
        def emit(
            rule_id: str,
            decision: str,
            message: str,
            obligations: tuple[str, ...] = (),
            **facts: str,
        ) -> None:
            rule = self.policy.rule.get(rule_id)
            if rule is None:
                return
            mech = t.mechanism
            base = {
                "hop": t.hop,
                "from": t.from_country or t.constraints.location,
                "to": t.to_country,
                "classification": t.constraints.classification,
                "via": " <- ".join(reversed(t.constraints.via)),
                "day": t.day.isoformat(),
            }
            out.append(
                Decision(
                    decision,
                    rule.id,
                    rule.version,
                    rule.severity,
                    t.event_id,
                    message,
                    {**base, **facts},
                    tuple(dict.fromkeys((*t.constraints.evidence, *t.evidence))),
                    (mech.mechanism_id,) if mech and mech.mechanism_id else (),
                    obligations,
                )
            )

        return emit

    def _personal(self, t: Transfer) -> bool:
        return t.constraints.classification in self.policy.personal

    # -- EU / EEA ---------------------------------------------------------------------------

    def _eu(self, t: Transfer, emit: Callable[..., None], state: MutableMapping[str, Any]) -> None:
        origin_eea = bool(t.constraints.origins & (self.eea | {"EEA", "EU"}))
        source = t.from_country or t.constraints.location
        if not (origin_eea or source in self.eea) or t.to_country in self.eea:
            return
        adequacy = self.policy.adequacy_for(t.to_country, t.day)
        if adequacy is not None and adequacy.scope == "whole":
            pass  # EU-ADEQ: allowed; an adequate destination needs nothing more
        elif adequacy is not None and adequacy.scope == "dpf_certified":
            self._eu_us(t, emit)
        elif adequacy is not None:
            emit(
                "EU-ADEQ",
                "allow_with_obligations",
                f"adequacy for {t.to_country} covers only "
                f"{adequacy.scope} importers: confirm the importer is in scope",
                (
                    f"confirm and record that the importer "
                    f"{t.importer.entity_id if t.importer else '(not named)'} falls within the "
                    f"{adequacy.scope} scope of the adequacy decision for {t.to_country}",
                ),
                scope=adequacy.scope,
            )
        else:
            self._eu_third(t, emit, state)
        self._eu_onward(t, emit)

    def _eu_us(self, t: Transfer, emit: Callable[..., None]) -> None:
        if self._dpf_active(t.importer, t.day) or self._scc_ok(t, emit):
            return
        emit(
            "EU-US",
            "deny",
            "EEA personal data to the US without an active EU-US DPF "
            "certification of the importer on that day, or valid SCCs with a current TIA",
        )

    def _dpf_active(self, importer: Party | None, day: date) -> bool:
        return certified(importer, "EU-US-DPF", day)

    def _scc_ok(self, t: Transfer, emit: Callable[..., None]) -> bool:
        """A valid safeguard; an overdue TIA or missing Art. 9 measures still alert."""
        if not valid(t.mechanism, SAFEGUARDS, t.day):
            return False
        mech = t.mechanism
        assert mech is not None
        if mech.kind == MechanismKind.SCC and not eu_scc(mech, t.day):
            return False  # old, or not the EU's clauses: no safeguard for EEA data
        if mech.kind == MechanismKind.SCC and (
            mech.tia_review_date is None or mech.tia_review_date < t.day
        ):
            emit(
                "EU-3RD",
                "alert",
                (
                    f"SCCs rely on a transfer impact assessment whose review date "
                    f"({mech.tia_review_date.isoformat()}) has passed: review the TIA"
                    if mech.tia_review_date
                    else "SCCs rely on a transfer impact assessment, and none is on record "
                    "(no review date): carry one out and record its review date"
                ),
            )
        if (
            t.constraints.classification == "special_category"
            and mech.kind == MechanismKind.SCC
            and not mech.supplementary_measures
        ):
            emit(
                "EU-ART9",
                "alert",
                "special-category data on SCCs without recorded supplementary "
                "measures (e.g. encryption with keys held in the EEA)",
            )
        return True

    def _eu_third(
        self, t: Transfer, emit: Callable[..., None], state: MutableMapping[str, Any]
    ) -> None:
        if self._scc_ok(t, emit):
            return
        mech = t.mechanism
        if mech is not None and mech.kind == MechanismKind.DEROGATION and mech.occasional:
            exporter = t.exporter.entity_id if t.exporter else "?"
            key = f"derogation:{exporter}:{t.to_country}:{t.day.year}"
            own = self.shards.own_key(key, t.shard)
            record = dict(state.get(own, {"uses": 0, "events": []}))
            if t.event_id not in record["events"]:  # a replayed event counts once
                record = {
                    "uses": record["uses"] + 1,
                    "events": [*record["events"], t.event_id][-RECENT_EVENTS:],
                }
                state[own] = record
            used = total(self.shards.parts(state, key), "uses")
            limit = (
                int(self.policy.rule["EU-3RD"].params.get("derogation_max_per_year", 3))
                if "EU-3RD" in self.policy.rule
                else 3
            )
            if used > limit:
                emit(
                    "EU-3RD",
                    "alert",
                    f"Art. 49 derogation used {used} times this year to "
                    f"{t.to_country}: repetitive transfers need SCCs or BCRs",
                    uses=str(used),
                )
            return
        emit(
            "EU-3RD",
            "deny",
            f"EEA personal data to {t.to_country} (no adequacy) without valid "
            "SCCs, BCRs or an occasional Art. 49 derogation",
        )

    def _eu_onward(self, t: Transfer, emit: Callable[..., None]) -> None:
        abroad = [
            p
            for p in t.sub_processors
            if p.country not in self.eea and self.policy.adequacy_for(p.country, t.day) is None
        ]
        if (t.onward or abroad) and not (t.mechanism and t.mechanism.onward_clause):
            names = ", ".join(f"{p.entity_id} ({p.country})" for p in abroad) or "the next importer"
            emit(
                "EU-ONWARD",
                "alert",
                f"onward transfer to {names} without an onward clause "
                "and a mechanism for the new hop",
            )

    # -- China, Russia, India ------------------------------------------------------------------

    def _china(
        self, t: Transfer, emit: Callable[..., None], state: MutableMapping[str, Any]
    ) -> None:
        source = t.from_country or t.constraints.location
        if not ("CN" in t.constraints.origins or source == "CN") or t.to_country == "CN":
            return
        exporter = t.exporter.entity_id if t.exporter else "?"
        key = f"cn:{exporter}:{t.day.year}"
        own = self.shards.own_key(key, t.shard)
        counts = dict(state.get(own, {"personal": 0, "sensitive": 0, "events": []}))
        if t.event_id not in counts.setdefault("events", []):  # a replayed event counts once
            bucket = (
                "sensitive" if t.constraints.classification in self.policy.sensitive else "personal"
            )
            counts[bucket] += t.subjects
            counts["events"] = [*counts["events"], t.event_id][-RECENT_EVENTS:]
            state[own] = counts
        parts = self.shards.parts(state, key)  # every writer's part, this one's included
        personal, sensitive = total(parts, "personal"), total(parts, "sensitive")
        assess = self.policy.rule.get("CN-ASSESS")
        contract = self.policy.rule.get("CN-CONTRACT")
        big = assess and (
            personal >= assess.params.get("personal_threshold", 1_000_000)
            or sensitive >= assess.params.get("sensitive_threshold", 10_000)
        )
        facts = {"exported_personal": str(personal), "exported_sensitive": str(sensitive)}
        if t.constraints.classification == "cn_important" or big:
            if not valid(t.mechanism, {MechanismKind.CN_SECURITY_ASSESSMENT}, t.day):
                emit(
                    "CN-ASSESS",
                    "deny",
                    "CN export above the security-assessment thresholds this "
                    "year (or important data) without a valid CAC security assessment",
                    **facts,
                )
        elif contract and (
            personal >= contract.params.get("personal_threshold", 100_000) or sensitive > 0
        ):
            kinds = {
                MechanismKind.CN_STANDARD_CONTRACT,
                MechanismKind.CN_CERTIFICATION,
                MechanismKind.CN_SECURITY_ASSESSMENT,
            }
            if not valid(t.mechanism, kinds, t.day):
                starts = [part["band_since"] for part in parts if "band_since" in part]
                if not starts:  # the first day in the band unfiled: kept (in this writer's part)
                    counts["band_since"] = t.day.isoformat()
                    state[own] = counts
                    starts = [counts["band_since"]]
                since = date.fromisoformat(min(starts))
                grace = int(contract.params.get("grace_days", 10))
                late = (t.day - since).days > grace
                emit(
                    "CN-CONTRACT",
                    "deny" if late else "alert",
                    "CN export in the standard-contract band this year without a filed "
                    f"standard contract or certification ({'past' if late else 'within'} the "
                    f"{grace}-day filing grace since {since.isoformat()})",
                    **facts,
                    band_since=since.isoformat(),
                )

    def _russia(self, t: Transfer, emit: Callable[..., None]) -> None:
        if "RU" not in (t.constraints.citizenships | t.constraints.origins) or t.to_country == "RU":
            return
        mech = t.mechanism
        if not (mech and mech.kind == MechanismKind.RU_NOTIFICATION and mech.mechanism_id):
            emit(
                "RU-NOTIFY",
                "deny",
                "personal data of Russian citizens sent abroad without a "
                "Roskomnadzor notification id",
            )
            return
        rule = self.policy.rule.get("RU-NOTIFY")
        params = rule.params if rule else {}
        importer = t.importer.entity_id if t.importer else None
        if t.to_country in params.get("restricted_countries", ()) or (
            importer is not None and importer in params.get("restricted_importers", ())
        ):
            emit(
                "RU-NOTIFY",
                "deny",
                f"Roskomnadzor has restricted transfers to {importer or t.to_country}: "
                "the notification does not cover it",
                restricted="importer"
                if importer in params.get("restricted_importers", ())
                else "country",
            )

    def _india(self, t: Transfer, emit: Callable[..., None]) -> None:
        source = t.from_country or t.constraints.location
        if (
            t.constraints.classification == "payment"
            and ("IN" in t.constraints.origins or source == "IN")
            and t.to_country != "IN"
        ):
            emit("IN-PAY", "deny", "payment-system data must stay in India (RBI)")
