"""Text for people (issue 11 item 9): no Python reprs in tables or CSV, times with their zone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

from auditline.output import cell, render


def test_cells_are_written_for_people() -> None:
    assert cell(None) == ""
    assert cell(["DE", "FR"]) == "DE, FR"
    assert cell(("a",)) == "a"
    assert cell({"hop": "serving", "via": None}) == "hop=serving, via="
    assert cell(datetime(2026, 3, 2, 9, 1)) == "2026-03-02T09:01:00+00:00"  # naive = UTC
    assert cell(datetime(2026, 3, 2, 9, 1, tzinfo=UTC)) == "2026-03-02T09:01:00+00:00"
    assert cell(True) == "yes"
    assert cell(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"


def test_csv_and_json_hold_no_reprs() -> None:
    rows = [(["DE", "FR"], None, datetime(2026, 3, 2, 9, 1))]
    csv = render(["countries", "review", "at"], rows, "csv").splitlines()
    assert csv[1] == '"DE, FR",,2026-03-02T09:01:00+00:00'
    assert "None" not in csv[1] and "[" not in csv[1]
    line = json.loads(render(["countries", "review", "at"], rows, "json"))
    assert line == {"countries": ["DE", "FR"], "review": None, "at": "2026-03-02T09:01:00+00:00"}
    table = render(["countries", "review"], [(["DE"], None)])
    assert "None" not in table and "['" not in table
