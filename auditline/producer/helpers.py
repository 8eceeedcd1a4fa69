"""Helpers that make lineage free: one call per fact, the run's lifecycle in one ``with``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from auditline.events import (
    AssetDeclared,
    DataMovement,
    FeatureProfile,
    ModelDeployed,
    RunStatus,
    TrainingRun,
)
from auditline.profiles import numeric_profile, profile_columns

if TYPE_CHECKING:
    from auditline.producer.records import Receipt


def file_digest(path: str | Path) -> str:
    """Hex SHA-256 of a file (model artefacts)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class RunHandle:
    """What the body of ``training_run`` reports; emitted with the completed event."""

    run_id: str
    model_version: str | None = None
    artifact_digest: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    feature_profiles: tuple[FeatureProfile, ...] = ()
    prediction_profile: FeatureProfile | None = None

    def set_output(self, version: str, artifact: str | Path | None = None) -> None:
        """The model version the run produced (and its artefact file, hashed here)."""
        self.model_version = version
        if artifact is not None:
            self.artifact_digest = file_digest(artifact)

    def log_metrics(self, **metrics: float) -> None:
        self.metrics.update({name: float(value) for name, value in metrics.items()})

    def profile_features(
        self, columns: Mapping[str, Sequence[Any]], categorical: Sequence[str] = ()
    ) -> None:
        """Reference profile of the training features (bounded size, whatever the row count)."""
        self.feature_profiles = profile_columns(dict(columns), categorical)

    def profile_predictions(self, scores: Sequence[float]) -> None:
        self.prediction_profile = numeric_profile("__prediction__", scores)


class LineageHelpers:
    """Mixed into ``AuditProducer``: named helpers over ``emit``."""

    def emit(self, model: Any, /, **fields: Any) -> Receipt:  # provided by AuditProducer
        raise NotImplementedError

    def declare_asset(self, **fields: Any) -> Receipt:
        """An asset exists: ``asset_id``, ``asset_kind``, ``name``, ``owner``, classification…"""
        return self.emit(AssetDeclared, **fields)

    def data_movement(self, **fields: Any) -> Receipt:
        """Data moved or was copied: ``asset_id``, ``source``, ``destination``, parties…"""
        return self.emit(DataMovement, **fields)

    def model_deployed(self, **fields: Any) -> Receipt:
        """A model version serves somewhere: ``model_name``, ``model_version``, ``location``…"""
        fields.setdefault("deployment_id", uuid4().hex)
        fields.setdefault("status", "deployed")
        return self.emit(ModelDeployed, **fields)

    @contextmanager
    def training_run(
        self,
        *,
        model: str,
        inputs: Sequence[str],
        location: Any,
        code_version: str,
        purpose: str,
        parameters: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Iterator[RunHandle]:
        """Emit ``started`` now, then ``completed`` (or ``failed`` with the error) on exit."""
        run = RunHandle(run_id or uuid4().hex)
        common = {
            "run_id": run.run_id, "model_name": model, "inputs": tuple(inputs),
            "location": location, "code_version": code_version, "purpose": purpose,
            "parameters": {k: str(v) for k, v in (parameters or {}).items()},
        }  # fmt: skip
        self.emit(TrainingRun, status=RunStatus.STARTED, **common)
        try:
            yield run
        except BaseException as exc:
            self.emit(
                TrainingRun, status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
                metrics=run.metrics, **common,
            )  # fmt: skip
            raise
        self.emit(
            TrainingRun, status=RunStatus.COMPLETED, model_version=run.model_version,
            metrics=run.metrics, feature_profiles=run.feature_profiles,
            prediction_profile=run.prediction_profile, artifact_digest=run.artifact_digest,
            **common,
        )  # fmt: skip
