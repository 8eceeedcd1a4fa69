"""``auditline drift reference SAMPLE``: a drift reference from a training sample (CSV/Parquet).

The result is a completed ``TrainingRun`` in the JSON form ``auditline drift --reference`` reads:
a profile of every feature column (``auditline.profiles``: numeric when every present value is a
number, else categorical), and of the prediction column when one is named. Empty CSV cells are
missing values. Parquet needs pyarrow (the ``store`` extra).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditline.drift.reference import PREDICTION
from auditline.errors import ConfigError
from auditline.profiles import profile_columns


def read_columns(path: Path) -> dict[str, list[Any]]:
    """The sample's columns by name: numbers where every present value is one."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return _parquet(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path} is not a CSV file: {exc}") from None
    if len(rows) < 2:
        raise ConfigError(f"{path} holds no rows: a header line and one row a sample at least")
    header, body = rows[0], rows[1:]
    if len(set(header)) != len(header) or not all(header):
        raise ConfigError(f"{path}: every column needs a name of its own in the header")
    columns: dict[str, list[Any]] = {name: [] for name in header}
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ConfigError(f"{path}:{number}: {len(row)} values for {len(header)} columns")
        for name, value in zip(header, row, strict=True):
            columns[name].append(value if value != "" else None)
    return {name: _typed(values) for name, values in columns.items()}


def _typed(values: list[Any]) -> list[Any]:
    try:
        return [None if v is None else float(v) for v in values]
    except ValueError:
        return values


def _parquet(path: Path) -> dict[str, list[Any]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError("reading Parquet needs pyarrow: pip install 'auditline[store]'") from None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a Parquet file: {exc}") from None
    return {name: table.column(name).to_pylist() for name in table.column_names}


def reference_run(
    columns: dict[str, list[Any]],
    *,
    model: str,
    version: str,
    prediction: str | None,
    categorical: Sequence[str],
    source: str,
) -> dict[str, Any]:
    """The TrainingRun (JSON form) whose profiles describe the sample."""
    unknown = [c for c in (*categorical, *([prediction] if prediction else [])) if c not in columns]
    if unknown:
        raise ConfigError(
            f"no column {', '.join(unknown)} in the sample (its columns: {', '.join(columns)})"
        )
    features: dict[str, Sequence[Any]] = {k: v for k, v in columns.items() if k != prediction}
    profiles = profile_columns(features, categorical)
    run: dict[str, Any] = {
        "kind": "TrainingRun", "event_time": datetime.now(UTC).isoformat(),
        "run_id": f"reference-{hashlib.sha256(source.encode()).hexdigest()[:12]}",
        "status": "completed", "model_name": model, "model_version": version,
        "inputs": [source], "code_version": "auditline drift reference",
        "location": {"country": "ZZ"}, "purpose": "drift reference",
        "feature_profiles": [p.model_dump(mode="json") for p in profiles],
    }  # fmt: skip
    if prediction is not None:
        forced = [PREDICTION] if prediction in categorical else []
        [profile] = profile_columns({PREDICTION: columns[prediction]}, forced)
        run["prediction_profile"] = profile.model_dump(mode="json")
    return run
