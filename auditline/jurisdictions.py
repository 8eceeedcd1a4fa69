"""Jurisdiction groups used by queries (``EEA``, ``ADEQUATE``) and their expansion (pure).

Facts from POLICY-REFERENCE (early 2026). ``ADEQUATE`` holds the EU adequacy decisions with
whole-country scope; ``ADEQUATE_PARTIAL`` those limited to part of the private sector (Canada:
PIPEDA organisations, Japan: APPI, United States: DPF-certified organisations), which count
as adequate only when the importer is within scope: a country filter cannot see that, so
``!adequate`` includes them. The dated, versioned policy pack supersedes this for decisions.
"""

from __future__ import annotations

EU = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    ]
)
EEA = EU | {"IS", "LI", "NO"}
ADEQUATE = frozenset(["AD", "AR", "FO", "GG", "IL", "IM", "JE", "NZ", "CH", "UY", "KR", "GB", "BR"])
ADEQUATE_PARTIAL = frozenset({"CA", "JP", "US"})

GROUPS: dict[str, frozenset[str]] = {
    "EU": EU,
    "EEA": EEA,
    "ADEQUATE": ADEQUATE,
    "ADEQUATE_PARTIAL": ADEQUATE_PARTIAL,
}


def expand(spec: str) -> tuple[frozenset[str], bool]:
    """Countries named by ``spec``, and whether it is negated: ``EEA``, ``!adequate``, ``DE,FR``."""
    negated = spec.startswith("!")
    names = [part.strip().upper() for part in spec.lstrip("!").split(",") if part.strip()]
    countries: set[str] = set()
    for name in names:
        if name in GROUPS:
            countries |= GROUPS[name]
        elif len(name) == 2 and name.isalpha():
            countries.add(name)
        else:
            raise ValueError(
                f"unknown jurisdiction {name!r}: use an ISO country code or one of {sorted(GROUPS)}"
            )
    return frozenset(countries), negated
