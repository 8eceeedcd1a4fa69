"""The policy file: typed, validated, versioned; errors name the file, line and what to fix."""

from __future__ import annotations

from datetime import date
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auditline.errors import PolicyError

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
    regions: dict[str, dict[str, str]] = Field(default_factory=dict)
    personal: list[str]
    sensitive: list[str]
    inherit_to_models: bool = True
    rules: list[RuleConfig]

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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror})") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PolicyError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        line = _line_of(root, error["loc"])
        where = ".".join(str(p) for p in error["loc"])
        raise PolicyError(f"{path}:{line}: {where}: {error['msg']}") from exc


def _line_of(node: Any, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
