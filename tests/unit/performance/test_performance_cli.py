"""``auditline performance``: judged windows and PerformanceAlerts as JSON lines, exit 0 / 1 / 2,
on files in the documented form, equal to the detector run in-process."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditline.cli import main
from auditline.events import Event, Outcome, PredictionBatch
from auditline.output import json_value
from auditline.performance.degradation import Baseline
from auditline.performance.detector import PerformanceDetector
from auditline.testing import outcome_streams

# accuracy 0.9 in training; a drop to 0.7 for two windows, then recovery (close_m 2)
ACCURACIES = (0.9, 0.9, 0.7, 0.7, 0.9, 0.9, 0.9)


def line(event: Event) -> str:
    return json.dumps({"kind": type(event).__name__, **event.model_dump(mode="json")})


def write(path: Path, events: Iterable[Event | str]) -> Path:
    path.write_text("".join((e if isinstance(e, str) else line(e)) + "\n" for e in events))
    return path


def events(accuracies: Iterable[float] = ACCURACIES) -> list[PredictionBatch | Outcome]:
    return list(outcome_streams.stream(np.random.default_rng(11), list(accuracies)))


RUN = outcome_streams.training_run({"accuracy": 0.9, "loss": 0.3})  # loss: no baseline


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    return write(tmp_path / "run.json", [RUN])


def without_kind(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in x.items() if k != "kind"} for x in lines]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["performance", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(text) for text in out.splitlines()], err


def test_a_drop_opens_an_episode_and_the_recovery_closes_it_as_in_process(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = events()
    inputs = write(tmp_path / "events.jsonl", stream)
    code, lines, err = run(capsys, "--training-run", str(run_file), str(inputs))
    alerts = [a for a in lines if a["kind"] == "performance"]
    assert [(a["state"], a["severity"], a["metric"], a["window_start"][:13]) for a in alerts] == [
        ("opened", "medium", "accuracy", "2026-11-02T02"),
        ("opened", "high", "accuracy", "2026-11-02T02"),
        ("closed", "medium", "accuracy", "2026-11-02T05"),
        ("closed", "high", "accuracy", "2026-11-02T05"),
    ]
    assert code == 0  # every episode closed by the end
    assert "joined 7000 of 7000 outcomes of m/1 to their prediction (7000 predictions)" in err
    detector = PerformanceDetector(Baseline.from_training_run(RUN))
    expected = [a for e in stream for a in detector.observe(e)]
    expected += detector.release(everything=True)
    assert without_kind(alerts) == [json_value(a) for a in expected]
    windows = [w for w in lines if w["kind"] == "window"]
    assert without_kind(windows) == detector.take_reports()
    # each window's line, then the alerts it raised
    order = [(x["kind"], x["window_start"][11:13]) for x in lines]
    assert order[:7] == [("window", "00"), ("window", "01"), ("window", "02"),
                         ("performance", "02"), ("performance", "02"), ("window", "03"),
                         ("window", "04")]  # fmt: skip


def test_window_lines_carry_coverage_and_label_delay(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = events((0.9, 0.9, 0.9))  # every fourth outcome of a batch left out
    kept = [e for e in stream if not isinstance(e, Outcome) or (e.row or 0) % 4]
    inputs = write(tmp_path / "events.jsonl", kept)
    settings = tmp_path / "performance.yaml"  # judged as the file goes, not only at its end
    settings.write_text("defaults:\n  horizon_seconds: 3600\n  allowed_lateness_seconds: 0\n")
    code, lines, err = run(
        capsys, "--training-run", str(run_file), "--config", str(settings), str(inputs)
    )
    windows = [w for w in lines if w["kind"] == "window"]
    assert code == 0 and len(windows) == 3
    for window in windows:
        assert window["model_name"] == "m" and window["model_version"] == "1"
        assert window["window_start"].endswith("+00:00") and window["predictions"] == 1000
        assert 0.6 < window["coverage"] < 0.9  # about a quarter of the outcomes left out
        assert window["coverage"] == window["joined"] / window["predictions"]
        assert 300 < window["label_delay_p50_s"] < 600  # exponential, mean 600 s: median 416 s
        assert 0.85 < window["accuracy"] < 0.95 and window["accuracy_samples"] >= 500
    assert "joined " in err and "{" not in err  # words, not reprs


def test_an_open_episode_at_the_end_exits_1(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = write(tmp_path / "events.jsonl", events((0.9, 0.7)))
    code, lines, _ = run(capsys, "--training-run", str(run_file), str(inputs))
    assert code == 1
    assert [a["state"] for a in lines if a["kind"] == "performance"] == ["opened", "opened"]


def test_a_bad_line_exits_2_naming_it(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = events((0.9,))[:3]
    inputs = write(tmp_path / "events.jsonl", [*good, '{"kind": "Outcome", "model_name": '])
    code, _, err = run(capsys, "--training-run", str(run_file), str(inputs))
    assert code == 2 and "line 4: not JSON" in err and str(inputs) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    inputs = write(tmp_path / "events.jsonl", [*good, '{"kind": "Outcome", "row": "x"}'])
    code, _, err = run(capsys, "--training-run", str(run_file), str(inputs))
    assert code == 2 and "line 4: event_time is required" in err


def test_other_versions_are_skipped_and_said(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = events((0.9,))
    other = [e.model_copy(update={"model_version": "2"}) for e in stream[:3]]
    inputs = write(tmp_path / "events.jsonl", [*other, *stream])
    code, lines, err = run(capsys, "--training-run", str(run_file), str(inputs))
    assert code == 0 and len([w for w in lines if w["kind"] == "window"]) == 1
    assert "auditline performance: skipped 3 events of m/2" in err.splitlines()


def test_no_prediction_of_the_version_exits_2(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = [e.model_copy(update={"model_version": "2"}) for e in events((0.9,))[:5]]
    inputs = write(tmp_path / "events.jsonl", other)
    code, lines, err = run(capsys, "--training-run", str(run_file), str(inputs))
    assert code == 2 and not lines
    assert "no prediction of m/1" in err.splitlines()[-1]


def test_a_training_run_not_completed_exits_2(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = write(tmp_path / "events.jsonl", events((0.9,))[:3])
    started = tmp_path / "started.json"
    started.write_text(json.dumps({**json.loads(run_file.read_text()), "status": "started"}))
    code, lines, err = run(capsys, "--training-run", str(started), str(inputs))
    assert code == 2 and not lines and err.count("\n") == 1
    assert str(started) in err and "did not complete a model version" in err
    code, _, err = run(capsys, "--training-run", str(inputs), str(inputs))  # not one object
    assert code == 2 and "not JSON" in err and err.count("\n") == 1


def test_invalid_settings_exit_2_naming_file_and_line(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = write(tmp_path / "events.jsonl", events((0.9,))[:3])
    settings = tmp_path / "performance.yaml"
    settings.write_text("defaults:\n  window_seconds: 3600\nmodels:\n  m:\n    min_outcomes: 0\n")
    code, lines, err = run(
        capsys, "--training-run", str(run_file), "--config", str(settings), str(inputs)
    )
    assert code == 2 and not lines and err.count("\n") == 1
    assert f"{settings}:5: models.m.min_outcomes" in err


def test_join_from_never_is_joined_offline_and_said(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = write(tmp_path / "events.jsonl", events((0.7,)))
    settings = tmp_path / "performance.yaml"
    settings.write_text("defaults:\n  join_from: never\n")
    code, lines, err = run(
        capsys, "--training-run", str(run_file), "--config", str(settings), str(inputs)
    )
    assert code == 1 and [a["metric"] for a in lines if a["kind"] == "performance"]
    assert "join_from: never" in err


def test_help_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "performance" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["performance", "--help"])
    assert "--training-run" in capsys.readouterr().out
