"""The policy file: typed, validated, versioned; errors name the file, line and what to fix."""

from __future__ import annotations

from datetime import date
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from auditline.errors import PolicyError
from auditline.yamlfile import load_model

Scope = Literal["whole", "commercial", "private_sector", "dpf_certified"]
RULE_IDS = (
    "RES-PIN", "EU-ADEQ", "EU-US", "EU-3RD", "EU-ONWARD", "EU-ART9", "CN-ASSESS", "CN-CONTRACT",
    "RU-LOCAL", "RU-NOTIFY", "IN-PAY", "PUR-COMPAT", "DECLASS",
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

    @cached_property
    def rule(self) -> dict[str, RuleConfig]:
        return {rule.id: rule for rule in self.rules if rule.enabled}

    def group(self, name: str) -> frozenset[str]:
        return frozenset(self.groups.get(name, ()))

    def adequacy_for(self, country: str, day: date) -> Adequacy | None:
        return next((a for a in self.adequacy if a.country == country and a.holds_on(day)), None)


def default_policy_path() -> Path:
    return Path(str(files("auditline.policy") / "default.yaml"))


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at ``path`` (the shipped default pack when None)."""
    path = Path(path) if path is not None else default_policy_path()
    return load_model(path, Policy, PolicyError, "policy file")
