"""The region catalogue: every region resolves to an ISO 3166-1 country, with a dated source."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from auditline.regions import (
    PROVIDERS,
    RegionError,
    canonical_provider,
    catalogue,
    locate,
)

# ISO 3166-1 alpha-2: the 249 officially assigned codes.
_ISO_CODES = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
ISO_3166_1_ALPHA_2 = frozenset(_ISO_CODES.split())


def test_the_iso_list_is_complete() -> None:
    assert len(ISO_3166_1_ALPHA_2) == 249


def test_every_region_resolves_to_its_country() -> None:
    regions = list(catalogue())
    assert len(regions) > 300
    for region in regions:
        fields = {"provider": region.provider, "region": region.region}
        assert locate(fields) == {**fields, "country": region.country}, region


def test_every_country_is_an_iso_3166_1_alpha_2_code() -> None:
    not_iso = [(r.provider, r.region, r.country) for r in catalogue()]
    assert [r for r in not_iso if r[2] not in ISO_3166_1_ALPHA_2] == []


def test_every_region_names_a_dated_source() -> None:
    for region in catalogue():
        assert region.source.url.startswith("https://"), region
        assert region.source.list, region
        assert isinstance(region.source.retrieved, date), region
        assert region.name and region.partition, region


def test_every_provider_is_covered_once_per_region_id() -> None:
    counts = Counter((r.provider, r.region) for r in catalogue())
    assert [key for key, n in counts.items() if n > 1] == []
    assert {r.provider for r in catalogue()} == set(PROVIDERS)
    assert all(r.region == r.region.strip().lower() for r in catalogue())


@pytest.mark.parametrize(
    ("provider", "region", "country"),
    [
        ("aws", "eu-central-1", "DE"),
        ("gcp", "asia-northeast1", "JP"),
        ("azure", "switzerlandnorth", "CH"),
        # sovereign and government partitions
        ("aws", "us-gov-west-1", "US"),
        ("aws", "eusc-de-east-1", "DE"),
        ("aws", "cn-northwest-1", "CN"),
        ("azure", "usgovvirginia", "US"),
        ("azure", "chinanorth3", "CN"),
        ("oci", "eu-frankfurt-2", "DE"),
        ("gcp", "u-france-east1", "FR"),
        # places that are not their neighbour's country
        ("aws", "ap-east-1", "HK"),
        ("gcp", "asia-east1", "TW"),
        ("azure", "northeurope", "IE"),
        ("azure", "westeurope", "NL"),
        ("alibaba", "cn-hongkong", "HK"),
        ("ibm", "eu-de", "DE"),
    ],
)
def test_known_regions(provider: str, region: str, country: str) -> None:
    assert locate({"provider": provider, "region": region})["country"] == country


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("aws", "aws"), ("AWS", "aws"), ("Amazon", "aws"), ("amazon web services", "aws"),
        ("gcp", "gcp"), ("Google", "gcp"), ("Google Cloud", "gcp"),
        ("azure", "azure"), ("Microsoft", "azure"), ("oci", "oci"), ("ORACLE", "oci"),
        ("alibaba", "alibaba"), ("aliyun", "alibaba"), ("Alibaba_Cloud", "alibaba"),
        ("ibm", "ibm"), ("IBM Cloud", "ibm"), ("onprem", None), ("", None),
    ],
)  # fmt: skip
def test_provider_spellings(spelling: str, canonical: str | None) -> None:
    assert canonical_provider(spelling) == canonical


def test_names_are_normalised_to_the_providers_spelling() -> None:
    assert locate({"provider": "Amazon", "region": "EU-Central-1"}) == {
        "provider": "aws", "region": "eu-central-1", "country": "DE"}  # fmt: skip
    assert locate({"provider": "Microsoft", "region": "Switzerland North"}) == {
        "provider": "azure", "region": "switzerlandnorth", "country": "CH"}  # fmt: skip
    assert locate({"country": "DE", "provider": "Google"}) == {"country": "DE", "provider": "gcp"}


def test_a_complete_location_is_returned_as_it_is() -> None:
    """The decoding path: nothing to fill in, nothing copied."""
    for location in (
        {"country": "DE", "provider": "aws", "region": "eu-central-1"},
        {"country": "DE", "provider": None, "region": None},
        {"country": "DE", "provider": "onprem", "region": "fra-dc-2"},
    ):
        assert locate(location) is location


def test_an_unknown_region_without_a_country_is_an_error_naming_it() -> None:
    with pytest.raises(RegionError) as caught:
        locate({"provider": "aws", "region": "eu-centrl-1"})
    assert caught.value.kind == "unknown_region"
    message = str(caught.value)
    assert "aws region 'eu-centrl-1' is not in the region catalogue" in message
    assert "give the location's country" in message and "check the region id" in message
    assert "close matches: eu-central-1" in message


def test_another_providers_region_id_is_pointed_out() -> None:
    with pytest.raises(RegionError, match="westeurope is a region of azure"):
        locate({"provider": "aws", "region": "westeurope"})


def test_an_unknown_region_with_a_country_is_taken_as_given() -> None:
    location = {"country": "DE", "provider": "aws", "region": "eu-central-9"}
    assert locate(location) is location
    assert locate({"country": "ZZ", "provider": "aws", "region": "eu-central-9"})["country"] == "ZZ"


def test_a_country_contradicting_the_region_is_an_error_saying_both() -> None:
    with pytest.raises(RegionError) as caught:
        locate({"country": "FR", "provider": "aws", "region": "eu-central-1"})
    assert caught.value.kind == "region_country_mismatch"
    assert "aws region eu-central-1 is in DE (Europe (Frankfurt))" in str(caught.value)
    assert "the location gives country FR" in str(caught.value)


def test_an_unknown_country_is_taken_from_the_region() -> None:
    assert locate({"country": "ZZ", "provider": "gcp", "region": "me-central2"})["country"] == "SA"


def test_an_unknown_provider_needs_the_country() -> None:
    with pytest.raises(RegionError, match="provider 'hetzner' is not in the region catalogue"):
        locate({"provider": "hetzner", "region": "fsn1"})
    location = {"country": "DE", "provider": "hetzner", "region": "fsn1"}
    assert locate(location) is location


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ({"provider": "aws"}, "names provider 'aws' but no region"),
        ({"region": "eu-west-1"}, "names region 'eu-west-1' but no provider"),
    ],
)
def test_half_a_cloud_location_needs_the_country(location: dict[str, str], says: str) -> None:
    with pytest.raises(RegionError, match=says):
        locate(location)


def test_the_catalogue_is_loaded_once() -> None:
    assert catalogue() is catalogue()
    assert catalogue().get("Amazon", "US-EAST-1") is catalogue().get("aws", "us-east-1")
