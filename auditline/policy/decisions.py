"""Decisions of the policy engine (pure values), with a deterministic id for deduplication."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decision:
    decision: str  # allow_with_obligations | alert | deny
    rule_id: str
    rule_version: str
    severity: str
    subject_event_id: str
    message: str
    facts: dict[str, str] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    mechanism_ids: tuple[str, ...] = ()
    obligations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.decision == "allow_with_obligations" and not self.obligations:
            raise ValueError(f"{self.rule_id}: an allow_with_obligations names its obligations")

    @property
    def decision_id(self) -> str:
        """The same rule on the same event (and hop) always gives the same id."""
        key = "|".join((self.rule_id, self.rule_version, self.subject_event_id,
                        self.facts.get("hop", ""), self.facts.get("via", "")))  # fmt: skip
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id, "decision": self.decision, "rule_id": self.rule_id,
            "rule_version": self.rule_version, "severity": self.severity,
            "event_id": self.subject_event_id, "message": self.message, "facts": self.facts,
            "evidence": list(self.evidence), "mechanism_ids": list(self.mechanism_ids),
            "obligations": list(self.obligations),
        }  # fmt: skip
