"""Pre-flight decisions: may an asset, with everything it inherits, go somewhere (pure).

Lineage tools record a transfer after it happened; a sovereignty check is worth most before it.
``preflight`` answers "may asset X go to location Y for purpose P under mechanism M on day D?"
with the engine the stream processors use, over the lineage state they would hold: the asset's
upstream events (its declaration, the declarations and copies it derives from), replayed in
event-time order up to D into a fresh state. The proposed movement is then judged against that
state and nothing is kept or emitted: the decisions (with their evidence event ids) are the
answer, and a deny is the reason not to start the transfer.

Limit: the yearly counters (China's export volumes, Art. 49 derogation uses) count only the
replayed events, not every movement of the exporter this year, so a volume threshold may be
reached earlier than a pre-flight says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from pydantic import ValidationError

from auditline.errors import InvalidEventError, NotFoundError
from auditline.events import (
    GIVEN,
    DataMovement,
    Event,
    Location,
    Party,
    TransferMechanism,
    unsent_envelope,
)
from auditline.policy.decisions import Decision
from auditline.policy.engine import PolicyEngine


@dataclass(frozen=True)
class Proposal:
    """A transfer not made yet. ``source``: where it leaves from (default: where the asset is);
    parties default to unnamed ones in the source and destination countries."""

    asset_id: str
    destination: Location
    purpose: str
    on: datetime
    mechanism: TransferMechanism | None = None
    source: Location | None = None
    exporter: Party | None = None
    importer: Party | None = None
    records: int = 0
    distinct_subjects: int | None = None
    subject_jurisdictions: tuple[str, ...] = field(default=())

    def movement(self, source: Location) -> DataMovement:
        """The movement this proposal would be, as the engine judges one."""
        envelope = unsent_envelope(
            str(uuid5(NAMESPACE_URL, f"preflight:{self.asset_id}:{self.on.isoformat()}")),
            self.on, service="auditline-preflight", instance="check", stream="preflight",
            sequence=0,
        )  # fmt: skip
        return DataMovement.model_validate(
            {
                "envelope": envelope, "asset_id": self.asset_id, "operation": "copy",
                "source": source, "destination": self.destination, "records": self.records,
                "bytes": 0, "distinct_subjects": self.distinct_subjects,
                "subject_jurisdictions": self.subject_jurisdictions, "purpose": self.purpose,
                "exporter": self.exporter or _unnamed("exporter", "controller", source.country),
                "importer": self.importer
                or _unnamed("importer", "processor", self.destination.country),
                "mechanism": self.mechanism,
            },
            context=GIVEN,
        )  # fmt: skip


@dataclass(frozen=True)
class Preflight:
    """The answer: the decisions the movement would get, and what the asset carries."""

    proposal: Proposal
    decisions: tuple[Decision, ...]
    replayed: int  # upstream events the lineage state was rebuilt from
    carries: dict[str, Any]  # the asset's constraints (origins, pins, classification, ...)

    @property
    def allowed(self) -> bool:
        """No deny (alerts and obligations still apply: see ``decisions``)."""
        return not any(d.decision == "deny" for d in self.decisions)


def preflight(engine: PolicyEngine, history: Iterable[Event], proposal: Proposal) -> Preflight:
    """Judge ``proposal`` against the lineage state ``history`` (the asset's upstream events)
    builds; ``NotFoundError`` when nothing up to the proposal's day declares the asset."""
    state: dict[str, Any] = {}
    replayed = 0
    for event in sorted(history, key=_order):
        if event.envelope.event_time <= proposal.on:
            engine.evaluate(event, state)
            replayed += 1
    known = engine.constraints(state, f"asset:{proposal.asset_id}")
    if known is None:
        raise NotFoundError(
            f"no lineage for asset {proposal.asset_id} up to {proposal.on.isoformat()}: declare "
            "it (AssetDeclared) or check the asset id and the date"
        )
    source = proposal.source or Location.model_validate(
        {"country": known.location or "ZZ"}, context=GIVEN
    )
    try:
        movement = proposal.movement(source)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise InvalidEventError(
            f"the proposed transfer is invalid at {where}: {error['msg']}", field=where
        ) from exc
    decisions = engine.evaluate(movement, state)
    return Preflight(proposal, tuple(decisions), replayed, known.to_json())


def _unnamed(role_name: str, role: str, country: str) -> Party:
    return Party(entity_id=f"unnamed-{role_name}", name=f"unnamed {role_name}", role=role,
                 country=country)  # fmt: skip


def _order(event: Event) -> tuple[Any, ...]:
    return (event.envelope.event_time, event.envelope.stream, event.envelope.sequence)
