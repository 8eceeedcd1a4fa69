"""`auditline check`: JSON lines in, decisions out; exit 0 / 1 / 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from auditline.cli import main

DECLARE = {"kind": "AssetDeclared", "event_time": "2026-03-02T09:00:00Z", "asset_id": "ds",
           "asset_kind": "dataset", "name": "ds", "owner": "o", "classification": "personal",
           "location": {"country": "DE"}, "origin_jurisdictions": ["EEA"], "residency": ["DE"]}  # fmt: skip
PARTY = {"entity_id": "x", "name": "X", "role": "processor", "country": "US"}
MOVE = {"kind": "DataMovement", "event_time": "2026-03-02T10:00:00Z", "event_id": "6f1d3c1e-0000-4000-8000-000000000001",
        "asset_id": "ds", "operation": "copy", "source": {"country": "DE"}, "destination": {"country": "US"},
        "records": 5, "bytes": 5, "purpose": "analytics", "exporter": {**PARTY, "country": "DE"}, "importer": PARTY}  # fmt: skip


def write(tmp_path: Path, *events: dict[str, object] | str) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(e if isinstance(e, str) else json.dumps(e) for e in events) + "\n")
    return str(path)


def test_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inside = {**MOVE, "destination": {"country": "DE"}}
    assert main(["check", write(tmp_path, DECLARE, inside)]) == 0
    assert capsys.readouterr().out == ""


def test_findings_are_json_lines_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", write(tmp_path, DECLARE, MOVE)]) == 1
    decisions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["rule_id"], d["decision"], d["severity"]) for d in decisions] == [
        ("RES-PIN", "deny", "high"), ("EU-US", "deny", "high")]  # fmt: skip
    assert all(d["event_id"] == MOVE["event_id"] for d in decisions)
    assert len(decisions[0]["evidence"]) == 2 and decisions[0]["decision_id"]


def test_stdin_and_a_custom_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from auditline.policy.model import default_policy_path

    policy = tmp_path / "mine.yaml"
    policy.write_text(
        default_policy_path()
        .read_text()
        .replace(
            '- {id: RES-PIN, version: "1", severity: high}',
            '- {id: RES-PIN, version: "1", severity: high, enabled: false}',
        )
    )
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(json.dumps(DECLARE) + "\n" + json.dumps(MOVE) + "\n")
    )
    assert main(["check", "--policy", str(policy), "-"]) == 1
    assert [json.loads(x)["rule_id"] for x in capsys.readouterr().out.splitlines()] == ["EU-US"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "line 2: not JSON"),
        (json.dumps({"kind": "Nope"}), "line 2: unknown kind Nope"),
        (json.dumps({**MOVE, "records": "many"}), "line 2: DataMovement.records"),
        (
            json.dumps({k: v for k, v in MOVE.items() if k != "event_time"}),
            "line 2: event_time is required",
        ),
        (
            json.dumps({**MOVE, "event_time": "2026-03-02T10:00:00"}),
            "line 2: DataMovement.envelope.event_time",
        ),
    ],
)
def test_unusable_input_exits_2_with_line_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str, message: str
) -> None:
    assert main(["check", write(tmp_path, DECLARE, bad)]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "/nonexistent/events.jsonl"]) == 2
    assert "cannot read /nonexistent/events.jsonl" in capsys.readouterr().err


def test_every_problem_of_every_line_is_reported_and_nothing_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {**MOVE, "records": "many", "bytes": -1, "destination": {}}
    path = write(tmp_path, DECLARE, MOVE, bad, "{not json", MOVE)
    assert main(["check", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # validated first: no decision printed for the good lines before line 3
    lines = err.splitlines()
    assert any("line 3: DataMovement.records" in line for line in lines)
    assert any("line 3: DataMovement.destination" in line for line in lines)
    assert any("line 4: not JSON" in line for line in lines)
    assert lines[-1].endswith("problems on 2 lines, nothing judged: fix them and run again")


def test_informational_decisions_alone_exit_0_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Canada's adequacy covers commercial organisations only: EU-ADEQ allow_with_obligations
    (severity info), with the obligation it names."""
    to_canada = {**MOVE, "destination": {"country": "CA"}, "importer": {**PARTY, "country": "CA"}}
    personal = {**DECLARE, "residency": []}
    path = write(tmp_path, personal, to_canada)
    assert main(["check", path]) == 0
    (decision,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (decision["rule_id"], decision["decision"]) == ("EU-ADEQ", "allow_with_obligations")
    assert decision["obligations"] and "importer x" in decision["obligations"][0]
    assert main(["check", "--fail-on", "info", path]) == 1
    assert main(["check", "--fail-on", "critical", write(tmp_path, DECLARE, MOVE)]) == 0
    assert main(["check", "--fail-on", "high", write(tmp_path, DECLARE, MOVE)]) == 1
