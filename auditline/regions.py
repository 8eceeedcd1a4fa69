"""Cloud regions and their countries: the catalogue shipped in ``regions.yaml``, loaded once.

A location may name a cloud provider and a region instead of a country (``{"provider": "aws",
"region": "eu-central-1"}``); ``locate`` completes such a location with the region's country,
normalises the provider's name (``Amazon`` -> ``aws``) and the region id (as the provider spells
it), and refuses what it cannot resolve or what contradicts itself, saying what to do. The
``Location`` model calls it before validation on what callers give (the SDK, ``auditline
check``: validation context ``GIVEN``); a recorded location (decoded, stored) is taken as it is,
only completed when it has no country. The wire carries the country, provider and region.

Each catalogued region names its source (the provider's documentation, and the list it was
checked against) with the retrieval date; docs/policy.md says how to add one. Engineering
reference, not legal advice.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Any

from auditline.errors import AuditlineError

PROVIDERS = ("aws", "gcp", "azure", "oci", "alibaba", "ibm")
"""Canonical provider names, as a completed location carries them."""

UNKNOWN_COUNTRY = "ZZ"
"""The ISO user-assigned code auditline uses for "country unknown"; a region may replace it."""

_ALIASES = {
    "aws": "aws", "amazon": "aws", "amazon-web-services": "aws",
    "gcp": "gcp", "google": "gcp", "google-cloud": "gcp", "google-cloud-platform": "gcp",
    "azure": "azure", "microsoft": "azure", "microsoft-azure": "azure",
    "oci": "oci", "oracle": "oci", "oracle-cloud": "oci", "oracle-cloud-infrastructure": "oci",
    "alibaba": "alibaba", "aliyun": "alibaba", "alibaba-cloud": "alibaba",
    "alibabacloud": "alibaba",
    "ibm": "ibm", "ibm-cloud": "ibm", "ibmcloud": "ibm",
}  # fmt: skip


class RegionError(AuditlineError, ValueError):
    """A location's provider and region cannot give it a country, or contradict its country.

    ``kind`` names the case: ``unknown_region``, ``unknown_provider``, ``missing_country``,
    ``region_country_mismatch``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Source:
    """Where a region's country was read: the provider's page, the list checked, and when."""

    key: str
    url: str
    list: str
    retrieved: date


@dataclass(frozen=True)
class CloudRegion:
    provider: str
    region: str
    country: str
    name: str
    partition: str
    source: Source
    note: str | None = None


class RegionCatalogue:
    """Catalogued regions by provider and region id; lookups ignore case and spaces."""

    def __init__(self, regions: Iterable[CloudRegion]) -> None:
        self._regions = tuple(regions)
        self._by_key = {(r.provider, _key(r.region)): r for r in self._regions}

    def __iter__(self) -> Iterator[CloudRegion]:
        return iter(self._regions)

    def __len__(self) -> int:
        return len(self._regions)

    def get(self, provider: str, region: str) -> CloudRegion | None:
        """The region ``region`` of ``provider`` (any usual spelling), or None."""
        canonical = canonical_provider(provider)
        if canonical is None:
            return None
        found = self._by_key.get((canonical, region))
        return found if found is not None else self._by_key.get((canonical, _key(region)))

    def close_matches(self, provider: str, region: str) -> list[str]:
        """Up to three region ids of ``provider`` spelled like ``region``."""
        ids = [r.region for r in self._regions if r.provider == provider]
        return difflib.get_close_matches(_key(region), ids, n=3, cutoff=0.75)

    def providers_with(self, region: str) -> list[str]:
        """The providers that have a region with this id."""
        return sorted({p for p, key in self._by_key if key == _key(region)})


def canonical_provider(name: str) -> str | None:
    """``aws``, ``gcp``, ``azure``, ``oci``, ``alibaba`` or ``ibm`` for a usual spelling of one
    of them (``Amazon``, ``Google Cloud``, ``microsoft``, ``Oracle``, ``aliyun`` ...), else None."""
    found = _ALIASES.get(name)
    if found is not None:
        return found
    return _ALIASES.get("-".join(name.strip().lower().replace("_", " ").split()))


@cache
def catalogue() -> RegionCatalogue:
    """The catalogue shipped with auditline, read on first use."""
    import yaml

    text = (files("auditline") / "regions.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return parse_catalogue(yaml.load(text, Loader=loader))


def parse_catalogue(data: Mapping[str, Any]) -> RegionCatalogue:
    """A catalogue from the parsed ``regions.yaml`` (``sources`` and ``regions`` by provider)."""
    sources = {
        key: Source(key, s["url"], s["list"], s["retrieved"]) for key, s in data["sources"].items()
    }
    return RegionCatalogue(
        CloudRegion(
            provider=provider,
            region=entry["region"],
            country=_country(provider, entry),
            name=entry["name"],
            partition=entry["partition"],
            source=sources[entry["source"]],
            note=entry.get("note"),
        )
        for provider, entries in data["regions"].items()
        for entry in entries
    )


def _country(provider: str, entry: Mapping[str, Any]) -> str:
    country = entry["country"]
    if not (isinstance(country, str) and len(country) == 2 and country.isupper()):
        raise ValueError(  # YAML reads an unquoted NO (Norway) as false
            f"regions.yaml: {provider} region {entry['region']}: country {country!r} is not an "
            "ISO 3166-1 alpha-2 code; write it in quotes"
        )
    return country


def locate(location: Mapping[str, Any]) -> Mapping[str, Any]:
    """``location`` (a Location's fields) completed from the catalogue.

    A known provider's name is normalised; a catalogued region gets its id as the provider
    spells it and, when the country is missing (or ``ZZ``, unknown), the region's country. A
    region outside the catalogue needs the country; a country that contradicts a catalogued
    region is refused. Locations without a provider or region are returned as they are, and so
    are locations that are complete already (the decoding path).
    """
    provider, region = location.get("provider"), location.get("region")
    if provider is None and region is None:
        return location
    if not isinstance(provider, str) or not isinstance(region, str):
        return _without_region(location, provider)
    found = catalogue().get(provider, region)
    country = location.get("country")
    if found is None:
        canonical = canonical_provider(provider)
        if country is None:
            raise _unresolved(canonical, provider, region)
        return location if canonical in (None, provider) else {**location, "provider": canonical}
    if country is None or country == UNKNOWN_COUNTRY:
        country = found.country
    elif str(country).upper() != found.country:
        raise RegionError(
            "region_country_mismatch",
            f"{found.provider} region {found.region} is in {found.country} ({found.name}), but "
            f"the location gives country {country}: correct the country or the region, or "
            "leave the country out to take it from the region",
        )
    if (provider, region, location.get("country")) == (found.provider, found.region, country):
        return location
    return {**location, "provider": found.provider, "region": found.region, "country": country}


def _without_region(location: Mapping[str, Any], provider: Any) -> Mapping[str, Any]:
    """A provider without a region (normalised), or a region without a provider, as it is;
    neither can give a country."""
    if location.get("country") is None:
        raise _missing_country(location)
    canonical = canonical_provider(provider) if isinstance(provider, str) else None
    return location if canonical in (None, provider) else {**location, "provider": canonical}


def _missing_country(location: Mapping[str, Any]) -> RegionError:
    if location.get("region") is None:
        return RegionError(
            "missing_country",
            f"the location names provider {location.get('provider')!r} but no region: give "
            "the provider's region id (e.g. eu-central-1) or the country (ISO 3166-1 alpha-2)",
        )
    return RegionError(
        "missing_country",
        f"the location names region {location.get('region')!r} but no provider: give the "
        f"provider ({', '.join(PROVIDERS)}) or the country (ISO 3166-1 alpha-2)",
    )


def _unresolved(canonical: str | None, provider: str, region: str) -> RegionError:
    if canonical is None:
        return RegionError(
            "unknown_provider",
            f"provider {provider!r} is not in the region catalogue (it knows "
            f"{', '.join(PROVIDERS)}): give the country (ISO 3166-1 alpha-2) of region "
            f"{region!r}, or one of those providers' names",
        )
    hints = []
    matches = catalogue().close_matches(canonical, region)
    if matches:
        hints.append(f"close matches: {', '.join(matches)}")
    others = [p for p in catalogue().providers_with(region) if p != canonical]
    if others:
        hints.append(f"{region} is a region of {', '.join(others)}")
    return RegionError(
        "unknown_region",
        f"{canonical} region {region!r} is not in the region catalogue: check the region id, "
        "or give the location's country (ISO 3166-1 alpha-2, e.g. DE)"
        + "".join(f"; {hint}" for hint in hints),
    )


def _key(region: str) -> str:
    return "".join(region.lower().split())
