"""The policy file: typed, validated, versioned; errors name the file, line and what to fix."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import date
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from auditline.errors import PolicyError
from auditline.events.types import Jurisdiction, MechanismKind
from auditline.yamlfile import load_model

Scope = Literal["whole", "commercial", "private_sector", "dpf_certified"]


@dataclass(frozen=True)
class RegimeRuleIds:
    """The rules a regime's decisions are filed under (each tuned or disabled in ``rules``):
    ``transfer`` no adequacy and no valid basis (or a restricted destination), ``partial`` an
    adequacy that covers only part of the importers, ``certified`` a certification-scoped
    adequacy (a DPF) without the importer's certification, ``assessment`` a basis whose transfer
    (risk) assessment is missing or overdue."""

    transfer: str
    partial: str | None = None
    certified: str | None = None
    assessment: str | None = None


REGIME_RULES = {
    "UK": RegimeRuleIds("UK-XFER", "UK-ADEQ", "UK-US", "UK-TRA"),
    "CH": RegimeRuleIds("CH-XFER", "CH-ADEQ", "CH-US"),
    "SA": RegimeRuleIds("SA-XFER", assessment="SA-RISK"),
    "JP": RegimeRuleIds("JP-XFER"),
    "KR": RegimeRuleIds("KR-XFER"),
    "BR": RegimeRuleIds("BR-XFER"),
    "IN": RegimeRuleIds("IN-DPDP"),
}
RegimeKey = Literal["UK", "CH", "SA", "JP", "KR", "BR", "IN"]
RULE_IDS = (
    "RES-PIN", "EU-ADEQ", "EU-US", "EU-3RD", "EU-ONWARD", "EU-ART9", "CN-ASSESS", "CN-CONTRACT",
    "RU-LOCAL", "RU-NOTIFY", "IN-PAY", "PUR-COMPAT", "DECLASS",
    *(rule for ids in REGIME_RULES.values() for rule in astuple(ids) if rule),
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Adequacy(_Strict):
    country: str = Field(pattern=r"^[A-Z]{2}$")
    scope: Scope
    effective_from: date
    valid_until: date | None = None
    reference: str = ""
    risk: str | None = None

    def holds_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.valid_until is None or day <= self.valid_until)


class Source(_Strict):
    """Where facts of the pack come from: the page read, what it is, and when it was read."""

    url: str = Field(pattern=r"^https?://")
    title: str
    retrieved: date
    note: str = ""  # what the page did or did not confirm


class _Dated(_Strict):
    effective_from: date
    valid_until: date | None = None  # last day it holds (inclusive)
    reference: str  # the instrument and provision, as a reader would cite it
    source: str  # a key of ``sources``

    def holds_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.valid_until is None or day <= self.valid_until)


class Recognition(_Dated):
    """A destination a regime recognises as adequate (decision, regulation or designation)."""

    country: Jurisdiction  # an ISO code or a group of ``groups`` (EEA)
    scope: Scope
    certification: str | None = None  # dpf_certified: the scheme the importer must hold


class Basis(_Dated):
    """A mechanism kind a regime accepts for a transfer without adequacy, and from/until when."""

    kind: MechanismKind
    modules: tuple[str, ...] | None = None  # TransferMechanism.module values; None: any
    signed_until: date | None = None  # only mechanisms signed on or before this day
    occasional: bool = False  # only when the mechanism is marked occasional
    assessment: bool = False  # a transfer (risk) assessment must be on record: tia_review_date

    @field_validator("modules")
    @classmethod
    def _lower(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(m.lower() for m in value)


class Restriction(_Dated):
    """A destination transfers to which are restricted (India's s. 16 notifications)."""

    country: Jurisdiction


class Regime(_Strict):
    """A transfer regime: which data it covers, what it accepts, each fact with its source.

    It covers data whose origin (or subject) jurisdictions meet ``covers``, and data leaving a
    country of ``covers``; a destination within ``covers`` is no transfer. ``basis_required``:
    a transfer needs adequacy or a basis; otherwise it is free unless ``restricted``."""

    name: str
    covers: tuple[Jurisdiction, ...]
    in_force: date  # events before are not judged by this regime
    reference: str
    source: str
    basis_required: bool = True
    adequacy: tuple[Recognition, ...] = ()
    bases: tuple[Basis, ...] = ()
    restricted: tuple[Restriction, ...] = ()


class RuleConfig(_Strict):
    id: str
    version: str
    severity: Literal["info", "low", "medium", "high", "critical"]
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in RULE_IDS:
            raise ValueError(f"unknown rule {value!r}; known rules: {', '.join(RULE_IDS)}")
        return value


class Policy(_Strict):
    version: str
    disclaimer: str = ""
    groups: dict[str, list[str]]
    adequacy: list[Adequacy]
    personal: list[str]
    sensitive: list[str]
    inherit_to_models: bool = True
    judge_prediction_subjects: bool = True  # predictions judged as their subjects' personal data
    sources: dict[str, Source] = Field(default_factory=dict)
    regimes: dict[RegimeKey, Regime] = Field(default_factory=dict)
    rules: list[RuleConfig]
    regions: object = None  # refused: see _no_region_map

    @field_validator("regions")
    @classmethod
    def _no_region_map(cls, value: object) -> None:
        raise PydanticCustomError(
            "region_map",
            "no longer read: cloud regions resolve through auditline's region catalogue "
            "(docs/policy.md, Cloud locations); remove the key",
        )

    @field_validator("regimes")
    @classmethod
    def _regimes_resolve(cls, value: dict[str, Regime], info: ValidationInfo) -> dict[str, Regime]:
        """Every source, group and rule a regime needs exists (else: what is missing, where)."""
        sources, groups = info.data.get("sources", {}), info.data.get("groups", {})
        for key, regime in value.items():
            for where, problem in _unresolved(key, regime, sources, groups):
                raise PydanticCustomError(
                    "regime", "{where}: {problem}", {"where": f"{key}.{where}", "problem": problem}
                )
        return value

    @cached_property
    def rule(self) -> dict[str, RuleConfig]:
        return {rule.id: rule for rule in self.rules if rule.enabled}

    def group(self, name: str) -> frozenset[str]:
        return frozenset(self.groups.get(name, ()))

    def adequacy_for(self, country: str, day: date) -> Adequacy | None:
        return next((a for a in self.adequacy if a.country == country and a.holds_on(day)), None)


def _unresolved(
    key: str, regime: Regime, sources: dict[str, Source], groups: dict[str, list[str]]
) -> list[tuple[str, str]]:
    """What ``regime`` names that the pack lacks: (where, problem) pairs."""
    facts: list[tuple[str, _Dated | Regime]] = [("source", regime)]
    facts += [(f"adequacy.{n}", fact) for n, fact in enumerate(regime.adequacy)]
    facts += [(f"bases.{n}", fact) for n, fact in enumerate(regime.bases)]
    facts += [(f"restricted.{n}", fact) for n, fact in enumerate(regime.restricted)]
    places = [("covers", c) for c in regime.covers]
    places += [(f"adequacy.{n}", a.country) for n, a in enumerate(regime.adequacy)]
    places += [(f"restricted.{n}", r.country) for n, r in enumerate(regime.restricted)]
    return [
        *((where, f"source {fact.source!r} is not among the pack's sources")
          for where, fact in facts if fact.source not in sources),
        *((where, f"{name!r} is neither an ISO country code nor a group")
          for where, name in places if len(name) != 2 and name not in groups),
        *_unruled(key, regime),
    ]  # fmt: skip


def _unruled(key: str, regime: Regime) -> list[tuple[str, str]]:
    """Facts whose decisions would need a rule id the regime does not have."""
    ids = REGIME_RULES[key]
    problems: list[tuple[str, str]] = []
    for n, a in enumerate(regime.adequacy):
        if a.scope == "dpf_certified" and not a.certification:
            problems.append((f"adequacy.{n}", "dpf_certified needs a certification scheme"))
        elif a.scope == "dpf_certified" and not ids.certified:
            problems.append((f"adequacy.{n}", f"regime {key} has no rule for certifications"))
        elif a.scope not in ("whole", "dpf_certified") and not ids.partial:
            problems.append((f"adequacy.{n}", f"regime {key} has no rule for partial scopes"))
    problems += [
        (f"bases.{n}", f"regime {key} has no rule for assessments")
        for n, b in enumerate(regime.bases)
        if b.assessment and not ids.assessment
    ]
    return problems


def default_policy_path() -> Path:
    return Path(str(files("auditline.policy") / "default.yaml"))


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at ``path`` (the shipped default pack when None)."""
    path = Path(path) if path is not None else default_policy_path()
    return load_model(path, Policy, PolicyError, "policy file")
