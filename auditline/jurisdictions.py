"""Jurisdiction specs for queries (``EEA``, ``!adequate``, ``DE,FR``), expanded from the policy.

The groups come from the policy pack (the shipped default, or ``AUDITLINE_POLICY_PATH``'s file):
every group it names (``EEA``, ``CONVENTION_108`` …), plus ``EU`` (the EEA without Iceland,
Liechtenstein and Norway), ``ADEQUATE`` (adequacy decisions with whole-country scope valid
today) and ``ADEQUATE_PARTIAL`` (decisions limited to part of the importers: Canada, Japan, the
United States), which count as adequate only for importers within scope; a country filter
cannot see that, so ``!adequate`` includes them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from auditline.policy.model import Policy

_NOT_EU = frozenset({"IS", "LI", "NO"})


def groups(policy: Policy) -> dict[str, frozenset[str]]:
    today = datetime.now(UTC).date()
    decisions = [a for a in policy.adequacy if a.holds_on(today)]
    named = {name.upper(): frozenset(countries) for name, countries in policy.groups.items()}
    return {
        **named,
        "EU": named.get("EEA", frozenset()) - _NOT_EU,
        "ADEQUATE": frozenset(a.country for a in decisions if a.scope == "whole"),
        "ADEQUATE_PARTIAL": frozenset(a.country for a in decisions if a.scope != "whole"),
    }


def expand(spec: str, policy: Policy) -> tuple[frozenset[str], bool]:
    """Countries named by ``spec``, and whether it is negated: ``EEA``, ``!adequate``, ``DE,FR``."""
    known = groups(policy)
    negated = spec.startswith("!")
    names = [part.strip().upper() for part in spec.lstrip("!").split(",") if part.strip()]
    countries: set[str] = set()
    for name in names:
        if name in known:
            countries |= known[name]
        elif len(name) == 2 and name.isalpha():
            countries.add(name)
        else:
            raise ValueError(
                f"unknown jurisdiction {name}: use an ISO country code or one of "
                + ", ".join(sorted(known))
            )
    return frozenset(countries), negated
