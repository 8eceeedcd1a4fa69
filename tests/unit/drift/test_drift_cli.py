"""``auditline drift``: alerts as JSON lines, exit 0 / 1 / 2, on files in the documented form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from auditline.cli import main
from auditline.profiles import categorical_profile, numeric_profile

START = datetime(2026, 11, 2, tzinfo=UTC)


def training_run(rng: np.random.Generator) -> dict[str, object]:
    rows = 5_000
    return {
        "kind": "TrainingRun", "event_time": START.isoformat(), "run_id": "run-7",
        "status": "completed", "model_name": "churn", "model_version": "3",
        "inputs": ["ds"], "code_version": "c1", "location": {"country": "DE"},
        "purpose": "analytics",
        "feature_profiles": [
            numeric_profile("age", rng.normal(40, 10, rows).tolist()).model_dump(mode="json"),
            categorical_profile("plan", rng.choice(["a", "b", "c"], rows).tolist()).model_dump(
                mode="json"
            ),
        ],
        "prediction_profile": numeric_profile("__prediction__", rng.random(rows).tolist())
        .model_dump(mode="json"),
    }  # fmt: skip


def batch(rng: np.random.Generator, hour: int, *, age_mean: float = 40.0) -> str:
    size = 500
    return json.dumps(
        {
            "kind": "PredictionBatch", "event_time": (START + timedelta(hours=hour)).isoformat(),
            "batch_id": f"b{hour}", "model_name": "churn", "model_version": "3",
            "location": {"country": "DE"}, "count": size, "sample_rate": 1.0,
            "numeric_features": [{"name": "age", "values": rng.normal(age_mean, 10, size).tolist()}],
            "categorical_features": [
                {"name": "plan", "values": rng.choice(["a", "b", "c"], size).tolist()}
            ],
            "scores": rng.random(size).tolist(), "latency_ms": 1.0,
        }
    )  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    reference = tmp_path / "run.json"
    reference.write_text(json.dumps(training_run(rng)))
    lines = [batch(rng, h) for h in range(4)] + [batch(rng, h, age_mean=55) for h in range(4, 8)]
    lines += [batch(rng, h) for h in range(8, 12)]
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("\n".join(lines) + "\n")
    return reference, predictions


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:  # type: ignore[type-arg]
    code = main(["drift", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_a_shift_opens_alerts_and_its_end_closes_them(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, predictions = files
    code, alerts, _ = run(capsys, "--reference", str(reference), str(predictions))
    drift = [a for a in alerts if a["kind"] == "DriftAlert"]
    age = [
        (a["state"], a["severity"], a["window_start"][:13]) for a in drift if a["feature"] == "age"
    ]
    assert age == [
        ("opened", "medium", "2026-11-02T04"),
        ("opened", "high", "2026-11-02T04"),
        ("closed", "medium", "2026-11-02T09"),
        ("closed", "high", "2026-11-02T09"),
    ]
    opened = next(a for a in drift if a["feature"] == "age")
    assert opened["training_run_id"] == "run-7" and opened["window_count"] == 500
    assert opened["statistic"] == "psi" and opened["value"] >= opened["threshold"]
    assert {"psi", "js", "ks", "p_value"} <= set(opened["statistics"])
    assert {"onset", "test"} <= set(opened)
    assert not [a for a in alerts if a["feature"] in ("plan", "__prediction__")]
    # +1.5 sd puts about 1.4% of the ages above anything seen in training: a quality episode
    quality = [(a["check"], a["state"], a["severity"], a["window_start"][:13])
               for a in alerts if a["kind"] == "DataQualityAlert"]  # fmt: skip
    assert quality == [
        ("out_of_range", "opened", "medium", "2026-11-02T04"),
        ("out_of_range", "closed", "medium", "2026-11-02T09"),
    ]
    assert code == 0  # every episode closed by the end


def test_an_open_episode_at_the_end_exits_1(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reference, predictions = files
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(predictions.read_text().splitlines()[:6]) + "\n")
    code, alerts, _ = run(capsys, "--reference", str(reference), str(cut))
    drift = [a for a in alerts if a["kind"] == "DriftAlert"]
    assert code == 1 and [a["state"] for a in drift if a["feature"] == "age"] == [
        "opened",
        "opened",
    ]


def test_bad_input_exits_2_with_the_line(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reference, predictions = files
    bad = tmp_path / "bad.jsonl"
    lines = predictions.read_text().splitlines()
    bad.write_text("\n".join([lines[0], '{"kind": "PredictionBatch", "count": "x"}']) + "\n")
    code, _, err = run(capsys, "--reference", str(reference), str(bad))
    assert code == 2 and "line 2" in err
    incomplete = tmp_path / "started.json"
    incomplete.write_text(json.dumps({**json.loads(reference.read_text()), "status": "started"}))
    code, _, err = run(capsys, "--reference", str(incomplete), str(predictions))
    assert code == 2 and "completed" in err


def test_the_embedded_runner_raises_the_same_alerts(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from auditline.catalogue import Catalogue
    from auditline.check import parse_event
    from auditline.drift.explain import described
    from auditline.drift.offline import DriftSettings
    from auditline.output import json_value
    from auditline.policy.engine import PolicyEngine
    from auditline.policy.model import load_policy
    from auditline.runner import EmbeddedRunner

    reference, predictions = files
    _, offline, _ = run(capsys, "--reference", str(reference), str(predictions))
    models = {entry.model.__name__: entry.model for entry in Catalogue()}
    lines = [reference.read_text(), *predictions.read_text().splitlines()]
    events = [parse_event(text, n, models) for n, text in enumerate(lines, start=1)]
    runner = EmbeddedRunner(PolicyEngine(load_policy()), drift=DriftSettings())
    result = runner.finish_drift(runner.run_events(events))
    for kind, alerts in (("DriftAlert", result.drift_alerts),
                         ("DataQualityAlert", result.quality_alerts)):  # fmt: skip
        assert [json_value(described(a)) for a in alerts] == [
            a for a in offline if a["kind"] == kind
        ]
    assert {a.get("onset") for a in offline} == {"abrupt", "model", None}
    assert all(a["test"] for a in offline)


def test_a_window_override_is_validated_like_the_yaml(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, predictions = files
    for window in ("0", "-60"):
        code, _, err = run(capsys, "--reference", str(reference), str(predictions),
                           "--window", window)  # fmt: skip
        assert code == 2 and f"--window {window}" in err and "Traceback" not in err


def test_late_predictions_unmatched_features_and_other_versions_are_reported(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reference, predictions = files
    lines = predictions.read_text().splitlines()
    renamed = [line.replace('"name": "plan"', '"name": "tier"') for line in lines]
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join([*renamed[3:], *renamed[:3]]) + "\n")  # hours 0-2 come last
    code, _, err = run(capsys, "--reference", str(reference), str(shuffled))
    assert "1500 of 6000 predictions arrived after their window was judged" in err
    assert "never appear in the predictions, so they were not judged (renamed?): plan" in err
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(line.replace('"model_version": "3"', '"model_version": "2"')
                               for line in lines) + "\n")  # fmt: skip
    code, _, err = run(capsys, "--reference", str(reference), str(other))
    assert code == 2 and "skipped 12 events of churn/2" in err
    assert "no prediction of churn/3" in err


def test_a_reference_made_from_a_training_sample_judges_like_the_run_it_describes(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, predictions = files
    rng = np.random.default_rng(5)
    sample = tmp_path / "train.csv"
    rows = ["age,plan,score"] + [
        f"{age:.3f},{plan},{score:.4f}" if i % 50 else f",{plan},{score:.4f}"  # some ages missing
        for i, (age, plan, score) in enumerate(zip(
            rng.normal(40, 10, 5000), rng.choice(["a", "b", "c"], 5000), rng.random(5000),
            strict=True))
    ]  # fmt: skip
    sample.write_text("\n".join(rows) + "\n")
    assert main(["--log-level", "error", "drift", "reference", str(sample), "--model", "churn",
                 "--version", "3", "--prediction", "score"]) == 0  # fmt: skip
    made = tmp_path / "reference.json"
    made.write_text(capsys.readouterr().out)
    profiles = {p["name"]: p["kind"] for p in json.loads(made.read_text())["feature_profiles"]}
    assert profiles == {"age": "numeric", "plan": "categorical"}
    code, alerts, _ = run(capsys, "--reference", str(made), str(predictions))
    assert {a["window_start"][:13] for a in alerts if a["feature"] == "age"} == {
        "2026-11-02T04", "2026-11-02T09"}  # fmt: skip
    assert code == 0


def test_a_bad_sample_is_one_line_and_exit_2_or_4(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    base = ["drift", "reference", "--model", "m", "--version", "1"]
    assert main([*base, str(ragged)]) == 2
    assert "ragged.csv:3: 1 values for 2 columns" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "none.csv")]) == 4
    assert main([*base, str(ragged), "--prediction", "nope"]) == 2


def test_a_feature_sent_as_the_other_kind_is_a_data_quality_alert_left_open(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reference, predictions = files
    lines = predictions.read_text().splitlines()[:4]
    batch = json.loads(lines[-1])
    ages = batch.pop("numeric_features")[0]["values"]
    batch["categorical_features"].append({"name": "age", "values": [str(a) for a in ages]})
    changed = tmp_path / "strings.jsonl"
    changed.write_text("\n".join([*lines[:-1], json.dumps(batch)]) + "\n")
    code, alerts, _ = run(capsys, "--reference", str(reference), str(changed))
    [alert] = alerts
    assert (alert["kind"], alert["check"], alert["state"], alert["severity"]) == (
        "DataQualityAlert", "type_mismatch", "opened", "high",
    )  # fmt: skip
    assert (alert["feature"], alert["rate"], alert["affected"]) == ("age", 1.0, 500)
    assert alert["window_start"] == "2026-11-02T03:00:00+00:00"
    assert (
        alert["test"] == "100.00% of the window's values given as the other kind than in training"
    )
    assert code == 1  # the episode is still open at the end
