"""`auditline check` with cloud locations: a provider + region judges as its country would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditline.cli import main
from tests.unit.policy.test_check_cli import DECLARE, MOVE, write

FRANKFURT = {"provider": "aws", "region": "eu-central-1"}
VIRGINIA = {"provider": "Amazon", "region": "US-EAST-1"}


def decisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *events: dict[str, Any]
) -> list[dict[str, Any]]:
    assert main(["check", write(tmp_path, *events)]) == 1
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_region_only_location_is_judged_as_its_country(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    explicit = decisions(tmp_path, capsys, DECLARE, MOVE)
    clouded = decisions(
        tmp_path,
        capsys,
        {**DECLARE, "location": FRANKFURT},
        {**MOVE, "source": FRANKFURT, "destination": VIRGINIA},
    )
    assert [(d["rule_id"], d["decision"], d["severity"]) for d in clouded] == [
        ("RES-PIN", "deny", "high"), ("EU-US", "deny", "high")]  # fmt: skip
    assert [(d["rule_id"], d["message"], d["facts"], d["evidence"]) for d in clouded] == [
        (d["rule_id"], d["message"], d["facts"], d["evidence"]) for d in explicit
    ]


def test_a_region_inside_the_pin_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inside = {**MOVE, "destination": {"provider": "gcp", "region": "europe-west3"}}
    assert main(["check", write(tmp_path, DECLARE, inside)]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        (
            {"provider": "aws", "region": "us-east-9"},
            "line 2: DataMovement.destination: aws region 'us-east-9' is not in the region catalogue",
        ),
        (
            {"country": "FR", "provider": "aws", "region": "us-east-1"},
            "line 2: DataMovement.destination: aws region us-east-1 is in US",
        ),
    ],
)
def test_unresolvable_or_contradicting_regions_are_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], destination: dict[str, str], message: str
) -> None:
    assert main(["check", write(tmp_path, DECLARE, {**MOVE, "destination": destination})]) == 2
    assert message in capsys.readouterr().err


def test_a_policy_with_the_old_region_map_says_to_remove_it(tmp_path: Path) -> None:
    from auditline.errors import PolicyError
    from auditline.policy.model import load_policy

    pack = (Path(__file__).parents[3] / "auditline/policy/default.yaml").read_text()
    path = tmp_path / "policy.yaml"
    path.write_text(pack + "\nregions:\n  aws:\n    eu-central-1: DE\n")
    with pytest.raises(PolicyError, match=r"policy.yaml:\d+: regions: no longer read: .*remove"):
        load_policy(path)
