"""Location: provider + region may stand in for the country; the wire carries all three."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import demo_events
from auditline.events import GIVEN, DataMovement, Location
from auditline.integrity.chain import hash_matches, seal


@pytest.mark.parametrize(
    ("given", "country"),
    [
        ({"provider": "aws", "region": "eu-central-1"}, "DE"),
        ({"provider": "gcp", "region": "asia-northeast1"}, "JP"),
        ({"provider": "azure", "region": "switzerlandnorth"}, "CH"),
    ],
)
def test_provider_and_region_give_the_country(given: dict[str, str], country: str) -> None:
    assert Location.model_validate(given) == Location(country=country, **given)


def test_errors_name_the_field_provider_and_region() -> None:
    movement = demo_events()[1].model_dump()
    movement["destination"] = {"provider": "aws", "region": "us-east-9"}
    with pytest.raises(ValidationError) as caught:
        DataMovement.model_validate(movement)
    error = caught.value.errors()[0]
    assert error["loc"] == ("destination",)
    assert error["type"] == "unknown_region"
    assert error["msg"].startswith("aws region 'us-east-9' is not in the region catalogue")


def test_a_contradicting_country_given_by_a_caller_is_refused() -> None:
    given = {"country": "DE", "provider": "azure", "region": "switzerlandnorth"}
    with pytest.raises(ValidationError, match=r"is in CH .* gives country DE"):
        Location.model_validate(given, context=GIVEN)


def test_a_recorded_location_is_taken_as_recorded_and_its_hash_still_holds() -> None:
    """Decoding (and the store's JSON) must not correct what was hashed: a location recorded
    before the catalogue knew better (a contradiction, a spelling) decodes unchanged."""
    movement = demo_events()[1]
    odd = Location.model_construct(country="DE", provider="Microsoft", region="Switzerland North")
    recorded = seal(movement.model_copy(update={"destination": odd}))
    codec = SingleObjectCodec(Catalogue())
    decoded = codec.decode(codec.encode(recorded))
    assert isinstance(decoded, DataMovement) and decoded.destination == odd
    assert hash_matches(decoded)
    assert hash_matches(type(decoded).model_validate_json(decoded.model_dump_json()))


def test_the_wire_carries_country_provider_and_region() -> None:
    codec = SingleObjectCodec(Catalogue())
    movement = demo_events()[1].model_dump()
    movement["destination"] = {"provider": "Google", "region": "europe-west3"}
    event = DataMovement.model_validate(movement)
    decoded = codec.decode(codec.encode(event))
    assert isinstance(decoded, DataMovement)
    assert decoded.destination == Location(country="DE", provider="gcp", region="europe-west3")
    assert decoded == event


def test_a_location_object_a_caller_gives_is_checked_like_a_dict() -> None:
    unchecked = Location(country="DE", provider="aws", region="us-east-1")  # no context: as is
    movement = demo_events()[1].model_dump()
    movement["destination"] = unchecked
    with pytest.raises(ValidationError, match=r"is in US .* gives country DE"):
        DataMovement.model_validate(movement, context=GIVEN)
    assert DataMovement.model_validate(movement).destination == unchecked  # recorded: as is
