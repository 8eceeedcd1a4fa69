from __future__ import annotations

import json

import pytest

from auditline.cli import main


def test_schemas_lists_the_catalogue_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "--json", "--topic-prefix", "acme"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["model"] for row in rows} >= {"DataMovement", "PredictionBatch", "DriftAlert"}
    assert all(row["topic"].startswith("acme.") and len(row["fingerprint"]) == 16 for row in rows)


def test_config_error_says_what_to_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITLINE_KAFKA__BOOTSTRAPSERVERS", "x")
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert "AUDITLINE_KAFKA__BOOTSTRAPSERVERS" in err and "check the spelling" in err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
