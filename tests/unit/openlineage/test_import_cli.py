"""`auditline openlineage import`: every file's events, each rejection named, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditline.cli import main
from tests.unit.openlineage.samples import fixture


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("AUDITLINE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AUDITLINE_PRODUCER__TRANSPORT", "memory")
    monkeypatch.setenv("AUDITLINE_SPOOL__PATH", str(tmp_path / "spool"))


def test_a_folder_is_imported_and_each_bad_file_or_event_named(
    memory: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a.ndjson").write_bytes(b"\n".join(fixture("spark/cll_start_complete.json")))
    (folder / "b.json").write_bytes(
        b"\xef\xbb\xbf[" + b",".join(fixture("dbt/run_complete_models.json")) + b"]"
    )
    (folder / "c.json").write_bytes(b"[{not json")
    (folder / "d.jsonl").write_bytes(b'{"producer": "p"}\n')
    (folder / "gone.json").symlink_to(tmp_path / "nowhere.json")
    assert main(["openlineage", "import", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert "7 accepted, 3 rejected from 5 file(s)" in out
    assert "c.json: rejected: the array is not JSON" in err
    assert "d.jsonl:1: rejected:" in err
    assert "gone.json: rejected: cannot be read" in err
    assert "Traceback" not in err


def test_all_accepted_is_exit_0_and_a_missing_path_exit_4(
    memory: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = tmp_path / "one.json"
    one.write_bytes(fixture("static/job_event.json")[0])
    assert main(["openlineage", "import", str(one)]) == 0
    assert main(["openlineage", "import", str(tmp_path / "none")]) == 4
    assert "does not exist" in capsys.readouterr().err
