"""What a declared asset inherits, and when a declaration may release it (rule DECLASS, pure).

A declaration inherits the constraints of the assets it is derived from and of its own earlier
declarations: re-declaring an asset cannot narrow what it carries (a narrower re-declaration is
kept at the inherited constraints and raises an alert). Only a declaration that carries a
``Declassification`` (an approved de-identification step with its evidence) and declares a
releasing classification (by default public, aggregate or anonymised) starts afresh with what it
declares; that release is recorded as an ``allow_with_obligations`` decision whose evidence is
every event the released constraints rested on. With DECLASS disabled, nothing is released.
"""

from __future__ import annotations

from dataclasses import replace
from functools import reduce

from auditline.events import AssetDeclared
from auditline.policy.constraints import Constraints, strictest
from auditline.policy.decisions import Decision
from auditline.policy.model import RuleConfig

RELEASING = ("public", "aggregate", "anonymised")
OBLIGATION = "keep the de-identification assessment and re-identification test with the audit log"


def inherit(
    event: AssetDeclared,
    own: Constraints,
    sources: list[Constraints],
    prior: Constraints | None,
    rule: RuleConfig | None,
) -> tuple[Constraints, list[Decision]]:
    """The asset's constraints after this declaration, and the DECLASS decisions it raises."""
    eid = str(event.envelope.event_id)
    inherited = [c.hop(event.asset_id, eid, own.location) for c in sources]
    if prior is not None:
        inherited.append(prior)
    if not inherited:
        return own, []
    merged = replace(reduce(Constraints.merge, inherited).merge(own), location=own.location)
    if event.declassification is None:
        if rule is not None and prior is not None and _narrower(own, prior):
            return merged, [
                _decision(
                    rule, event, merged, decision="alert", severity=rule.severity, message=_NARROWER
                )
            ]
        return merged, []
    if rule is None:
        return merged, []
    releasing = rule.params.get("releasing_classifications", RELEASING)
    if str(event.classification) not in releasing:
        message = (
            f"declassification to {event.classification} does not release inherited "
            f"constraints (releasing classifications: {', '.join(releasing)}); they are kept"
        )
        return merged, [
            _decision(
                rule, event, merged, decision="alert", severity=rule.severity, message=message
            )
        ]
    message = (
        f"approved de-identification ({event.declassification.method}): inherited "
        f"{merged.classification} constraints released for {event.asset_id}"
    )
    return own, [
        _decision(
            rule, event, merged, decision="allow_with_obligations", severity="info", message=message
        )
    ]


_NARROWER = (
    "re-declaration is narrower than the constraints the asset carries and has no "
    "declassification: the inherited constraints are kept"
)


def _narrower(own: Constraints, prior: Constraints) -> bool:
    return (
        strictest(own.classification, prior.classification) != own.classification
        or bool(prior.pins - own.pins)
        or bool(prior.origins - own.origins)
        or bool(prior.citizenships - own.citizenships)
    )


def _decision(
    rule: RuleConfig,
    event: AssetDeclared,
    released: Constraints,
    *,
    decision: str,
    severity: str,
    message: str,
) -> Decision:
    eid = str(event.envelope.event_id)
    facts = {
        "asset": event.asset_id,
        "declared_classification": str(event.classification),
        "inherited_classification": released.classification,
        "inherited_origins": ",".join(sorted(released.origins)),
        "inherited_pins": " and ".join(
            "/".join(sorted(p)) for p in sorted(released.pins, key=sorted)
        ),
    }
    if event.declassification is not None:
        d = event.declassification
        facts |= {"method": d.method, "approved_by": d.approved_by, "evidence_uri": d.evidence_uri}
        if d.approval_id:
            facts["approval_id"] = d.approval_id
    obligations = (OBLIGATION,) if decision == "allow_with_obligations" else ()
    evidence = tuple(dict.fromkeys((*released.evidence, eid)))
    return Decision(
        decision, rule.id, rule.version, severity, eid, message, facts, evidence, (), obligations
    )
