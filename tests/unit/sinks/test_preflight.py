"""Pre-flight: a transfer judged before it happens, from the lineage in the audit store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from auditline.sinks.migrate import migrate
from auditline.sinks.preflight import check_transfer
from auditline.sinks.rows import COLUMNS, Located, rows_for
from auditline.sinks.store import Store, connect

from auditline.cli import main
from auditline.demo import ACME_EU, FRANKFURT
from auditline.errors import NotFoundError
from auditline.events import DataMovement, Location
from auditline.policy.preflight import Proposal
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings, ClickHouseSettings
from tests.unit.sinks.platform import Stream, asset

LATER = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def lineage(store_settings: ClickHouseSettings) -> Iterator[Store]:
    """A dataset pinned to DE, and a copy of it made in FR (which inherits the pin... and fails
    it: the copy's decisions are the sink's business, not the pre-flight's)."""
    s = Stream("owner")
    pinned = asset(s, 0, "ds")
    pinned = s.event(type(pinned), 1, **{**pinned.model_dump(exclude={"envelope"}),
                                         "residency": ("DE", "FR")})  # fmt: skip
    copy = s.event(DataMovement, 2, asset_id="ds", target_asset_id="ds-fr", operation="copy",
                   source=FRANKFURT, destination={"country": "FR"}, records=10, bytes=100,
                   purpose="analytics", exporter=ACME_EU, importer={**ACME_EU.model_dump(),
                   "country": "FR"})  # fmt: skip
    store = connect(store_settings)
    migrate(store)
    rows = rows_for([Located(e, "t", 0, i) for i, e in enumerate((pinned, copy))])
    for table, values in rows.tables.items():
        store.insert(table, COLUMNS[table], values)
    yield store
    store.close()


def proposal(to: str, asset_id: str = "ds-fr", on: datetime = LATER) -> Proposal:
    return Proposal(asset_id, Location(country=to), "analytics", on)


def test_an_inherited_pin_refuses_the_transfer_before_it_happens(
    lineage: Store, store_settings: ClickHouseSettings
) -> None:
    settings = AuditlineSettings(clickhouse=store_settings)
    answer = check_transfer(settings, proposal("US"))
    assert not answer.allowed and answer.replayed == 2
    assert {(d.rule_id, d.decision) for d in answer.decisions} >= {("RES-PIN", "deny")}
    pin = next(d for d in answer.decisions if d.rule_id == "RES-PIN")
    assert len(pin.evidence) >= 2  # the declaration and the copy it inherits through
    assert sorted(answer.carries["pins"][0]) == ["DE", "FR"]
    assert check_transfer(settings, proposal("DE")).decisions == ()  # inside the pin: may go


def test_unknown_assets_and_days_before_the_declaration_are_errors(
    lineage: Store, store_settings: ClickHouseSettings
) -> None:
    settings = AuditlineSettings(clickhouse=store_settings)
    with pytest.raises(NotFoundError, match="no lineage node nope"):
        check_transfer(settings, proposal("US", asset_id="nope"))
    with pytest.raises(NotFoundError, match="no lineage for asset ds-fr up to 2025"):
        check_transfer(settings, proposal("US", on=datetime(2025, 1, 1, tzinfo=UTC)))


def test_the_cli_and_the_sdk_answer_the_same(
    lineage: Store,
    store_settings: ClickHouseSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flight = ["check", "--transfer", "ds-fr", "--purpose", "analytics", "--on", "2026-02-01"]
    assert main([*flight, "--to", "aws:us-east-1"]) == 1
    out, err = capsys.readouterr()
    rules = {json.loads(line)["rule_id"] for line in out.splitlines()}
    assert "RES-PIN" in rules and "ds-fr to US on 2026-02-01T23:59:59.999000+00:00: refused" in err
    assert main([*flight, "--to", "DE"]) == 0
    assert "may go (2 upstream events replayed)" in capsys.readouterr().err
    assert main([*flight, "--to", "aws:eu-nowhere-9"]) == 2
    assert "--to aws:eu-nowhere-9: aws region 'eu-nowhere-9'" in capsys.readouterr().err
    settings = AuditlineSettings(
        clickhouse=store_settings, spool={"path": str(tmp_path / "spool")},
        producer={"service": "etl", "instance": "e1", "transport": "memory"},
    )  # fmt: skip
    with AuditProducer(settings) as producer:
        answer = producer.check("ds-fr", to={"provider": "gcp", "region": "us-east4"},
                                purpose="analytics", on=LATER)  # fmt: skip
    assert not answer.allowed and answer.proposal.destination.country == "US"


def test_bad_proposals_and_missing_stores_are_one_line_errors(
    lineage: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flight = ["check", "--transfer", "ds-fr", "--purpose", "analytics", "--to", "US"]
    assert main([*flight, "--records", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "invalid at records" in err
    # a day means all of it: the copy made at 08:02 on 5 Jan 2026 counts on that day
    assert main([*flight, "--on", "2026-01-05"]) == 1
    capsys.readouterr()
    missing = tmp_path / "no-store"
    monkeypatch.setenv("AUDITLINE_CLICKHOUSE__DSN", f"chdb://{missing}")
    assert main(flight) == 4
    assert f"no embedded store at {missing}" in capsys.readouterr().err
    assert not missing.exists()  # a reader never creates a store


def test_walk_depths_outside_0_to_1000_are_refused(lineage: Store) -> None:
    from auditline.sinks.queries import Provenance

    from auditline.errors import ConfigError

    provenance = Provenance(lineage)
    assert [h.node for h in provenance.downstream("ds", 0)] == []
    with pytest.raises(ConfigError, match="depth -1: give a depth from 0 to 1000"):
        provenance.downstream("ds", -1)
    with pytest.raises(ConfigError, match="depth 1001"):
        provenance.upstream("ds-fr", 1001)
