"""Settings of the model-quality detector: windows, the join horizon, tolerances per metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from auditline.yamlfile import PerModel, load_per_model

HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "auc")
LOWER_IS_BETTER = ("mae", "rmse")
METRICS = (*HIGHER_IS_BETTER, *LOWER_IS_BETTER)
WEEK_S = 7 * 24 * 3600


class Tolerance(BaseModel):
    """How far a metric may degrade from the training run's before it alerts: an absolute drop
    for accuracy, precision, recall and AUC; a rise relative to the training value for MAE and
    RMSE (0.2: 20% above it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    medium: float = Field(gt=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Tolerance:
        if self.high < self.medium:
            raise ValueError("a tolerance's high must be at least its medium")
        return self


DEFAULT_TOLERANCES = {
    **{metric: Tolerance(medium=0.05, high=0.10) for metric in HIGHER_IS_BETTER},
    **{metric: Tolerance(medium=0.2, high=0.5) for metric in LOWER_IS_BETTER},
}


JoinFrom = Literal["first_outcome", "training_run", "never"]


class PerformanceConfig(BaseModel):
    """Windows, the join horizon and the degradation tolerances of one model.

    ``join_from`` says when a model version's predictions start being kept for the join:
    ``first_outcome`` (once an Outcome of the version has been seen: a model nobody sends
    outcomes for costs nothing), ``training_run`` (from its completed training run on), or
    ``never`` (no model-quality monitoring for the model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    join_from: JoinFrom = "first_outcome"

    window_seconds: int = Field(3600, gt=0)
    allowed_lateness_seconds: int = Field(300, ge=0)
    horizon_seconds: int = Field(WEEK_S, gt=0)
    min_outcomes: int = Field(500, ge=1)
    positive_label: str = "1"
    decision_threshold: float = 0.5
    tolerances: dict[str, Tolerance] = Field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    open_k: int = Field(1, ge=1)
    open_n: int = Field(1, ge=1)
    close_m: int = Field(2, ge=1)
    close_ratio: float = Field(0.5, gt=0, le=1)
    max_pending_outcomes: int = Field(1_000_000, ge=0)

    @field_validator("tolerances", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        """The given metrics' tolerances over the defaults; an unknown metric is an error."""
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown metrics {', '.join(unknown)}: use {', '.join(METRICS)}")
        return {**DEFAULT_TOLERANCES, **value}

    @model_validator(mode="after")
    def _consistent(self) -> PerformanceConfig:
        if self.open_k > self.open_n:
            raise ValueError("open_k (windows over threshold) cannot exceed open_n (of windows)")
        return self

    @property
    def horizon_ms(self) -> int:
        return self.horizon_seconds * 1000


class PerformanceSettings(PerModel[PerformanceConfig]):
    """``defaults`` for every model, ``models`` overrides by model name (as drift's)."""

    defaults: PerformanceConfig = PerformanceConfig()


def load_performance_settings(path: Path | None) -> PerformanceSettings:
    """Settings from a YAML file (``defaults:`` / ``models:``); the defaults without one."""
    return load_per_model(path, PerformanceSettings, "model-quality settings")
