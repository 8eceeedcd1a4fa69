"""What data carries with it along lineage (pure, immutable, JSON-serialisable for state stores).

Derived data inherits the union of its inputs' origin jurisdictions and subject citizenships,
the strictest classification, every residency pin (each must hold), the purposes declared at
collection, and the evidence: the event ids from the original declaration through each hop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditline.events import Classification

_ORDER = [c.value for c in Classification]


def strictest(a: str, b: str) -> str:
    return a if _ORDER.index(a) >= _ORDER.index(b) else b


@dataclass(frozen=True)
class Constraints:
    classification: str = "unknown"
    origins: frozenset[str] = frozenset()
    citizenships: frozenset[str] = frozenset()
    pins: frozenset[frozenset[str]] = frozenset()
    purposes: frozenset[str] = frozenset()
    location: str = ""  # country where this data (or model) currently is
    evidence: tuple[str, ...] = ()
    via: tuple[str, ...] = field(default=())  # lineage path of node ids, origin first

    def merge(self, other: Constraints) -> Constraints:
        return Constraints(
            classification=strictest(self.classification, other.classification),
            origins=self.origins | other.origins,
            citizenships=self.citizenships | other.citizenships,
            pins=self.pins | other.pins,
            purposes=self.purposes | other.purposes,
            location=self.location or other.location,
            evidence=tuple(dict.fromkeys(self.evidence + other.evidence)),
            via=tuple(dict.fromkeys(self.via + other.via)),
        )

    def hop(self, node: str, event_id: str, location: str) -> Constraints:
        """The same constraints one lineage hop further (a copy, a model, a deployment)."""
        return Constraints(
            self.classification, self.origins, self.citizenships, self.pins, self.purposes,
            location, tuple(dict.fromkeys((*self.evidence, event_id))), (*self.via, node),
        )  # fmt: skip

    def allowed_in(self, country: str) -> bool:
        return all(country in pin for pin in self.pins)

    def to_json(self) -> dict[str, Any]:
        return {
            "classification": self.classification, "origins": sorted(self.origins),
            "citizenships": sorted(self.citizenships), "pins": sorted(sorted(p) for p in self.pins),
            "purposes": sorted(self.purposes), "location": self.location,
            "evidence": list(self.evidence), "via": list(self.via),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Constraints:
        return cls(
            data["classification"], frozenset(data["origins"]), frozenset(data["citizenships"]),
            frozenset(frozenset(p) for p in data["pins"]), frozenset(data["purposes"]),
            data["location"], tuple(data["evidence"]), tuple(data["via"]),
        )  # fmt: skip
