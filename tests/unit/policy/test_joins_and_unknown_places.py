"""What OpenLineage ingestion leans on: joins keep every input's constraints, an unknown (ZZ)
source lets the asset's known location speak, and a residency pin on a group is its members."""

from __future__ import annotations

from typing import Any

from tests.unit.policy.test_scenarios import asset, move, run


def rules(decisions: list[tuple[str, str]]) -> set[str]:
    return {rule for rule, _ in decisions}


def test_a_join_keeps_the_constraints_of_every_input_whatever_their_order() -> None:
    for first, second in (("customers", "countries"), ("countries", "customers")):
        state: dict[str, Any] = {}
        run(state, asset("customers", residency=("DE",)), asset("countries", cls="public"))
        run(state, move(first, "DE", target_asset_id="joined", operation="derive"),
            move(second, "DE", target_asset_id="joined", operation="derive"))  # fmt: skip
        [copied] = run(state, move("joined", "US"))
        assert "RES-PIN" in rules(copied), (first, second)


def test_a_copy_into_a_declared_target_keeps_the_targets_own_pin() -> None:
    state: dict[str, Any] = {}
    run(state, asset("public-ref", cls="public"), asset("mart", residency=("DE",)))
    run(state, move("public-ref", "DE", target_asset_id="mart"))
    [copied] = run(state, move("mart", "US"))
    assert "RES-PIN" in rules(copied)


def test_an_unknown_source_is_judged_from_where_the_asset_is_known_to_be() -> None:
    state: dict[str, Any] = {}
    run(state, asset("crm"))
    [moved] = run(state, move("crm", "US", src="ZZ", target_asset_id="crm-us"))
    assert "EU-US" in rules(moved)


def test_a_residency_pin_on_a_group_allows_its_members_and_only_them() -> None:
    state: dict[str, Any] = {}
    [declared] = run(state, asset("eu-only", residency=("EEA",)))
    assert declared == []
    [inside, outside] = run(state, move("eu-only", "FR"), move("eu-only", "US"))
    assert "RES-PIN" not in rules(inside) and "RES-PIN" in rules(outside)
