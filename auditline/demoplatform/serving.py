"""The platform's ML: the churn model trained in Frankfurt, deployed, and serving predictions.

The model is a real ONNX graph (``churn.onnx``, 200 bytes: a logistic regression over
tenure_months, monthly_spend and support_calls; ``tests/unit/test_demo.py`` rebuilds it with the
``onnx`` package and checks the shipped file computes the same scores) run by ONNX Runtime
through ``auditline.onnx.AuditedModel``, so every served batch is a ``PredictionBatch`` event.
The customers it scores are drawn from a seeded generator; part way through the day a marketing
campaign brings in new customers (short tenure, many support calls): the drift the detector is
there to see. Whether a scored customer churned is known 70 minutes later (an ``Outcome`` per
row of the batch): the campaign's customers, signed up with a discount, mostly stay although the
model says they will leave, so its accuracy falls (the model-quality detector's alert). Needs
numpy and onnxruntime (``auditline[demo]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditline.demoplatform.story import (
    CHURN_SERVING,
    DAY,
    FRANKFURT,
    ML_TRAINING,
    VIRGINIA,
    Step,
)
from auditline.events import DeploymentStatus, ModelDeployed, RunStatus, TrainingRun
from auditline.performance.config import PerformanceConfig, PerformanceSettings, Tolerance

if TYPE_CHECKING:
    import numpy as np

    from auditline.onnx import AuditedModel
    from auditline.producer import AuditProducer

MODEL_FILE = Path(__file__).with_name("churn.onnx")
FEATURES = ("tenure_months", "monthly_spend", "support_calls")
MODEL, VERSION, RUN_ID = "churn", "4", "run-churn-4"
SERVING_START = DAY + timedelta(hours=1)  # 09:00 UTC
HOURS = 8  # serving windows of one hour: 09:00 .. 17:00
DRIFT_HOURS = frozenset({3, 4, 5})  # 12:00 .. 15:00: the campaign's customers
BATCHES_PER_HOUR = 3
BATCH_ROWS = 80
OUTCOME_DELAY = timedelta(minutes=70)  # when whether a scored customer churned is known
TRAINED = {"accuracy": 0.82, "auc": 0.82}  # the training run's (on the regular customers)
# hourly windows judged once two hours of outcomes have passed them; a drop of 0.10 (0.20)
# in accuracy or AUC alerts: the regular hours' own spread (0.026 at 240 outcomes) stays under it
QUALITY = PerformanceSettings(
    defaults=PerformanceConfig(
        join_from="training_run", window_seconds=3600, allowed_lateness_seconds=0,
        horizon_seconds=7200, min_outcomes=200,
        tolerances={m: Tolerance(medium=0.10, high=0.20) for m in TRAINED},
    )
)  # fmt: skip


def customers(rng: Any, rows: int, *, campaign: bool) -> np.ndarray:
    """Feature rows (float32) of ``rows`` customers; ``campaign``: the drifted population."""
    import numpy as np

    if campaign:
        tenure = rng.gamma(1.2, 4.0, rows)
        calls = rng.poisson(3.5, rows)
    else:
        tenure = rng.gamma(2.0, 12.0, rows)
        calls = rng.poisson(1.2, rows)
    spend = rng.normal(60.0, 15.0, rows).clip(5.0, None)
    matrix: np.ndarray = np.column_stack([tenure, spend, calls]).astype(np.float32)
    return matrix


def train(producer: AuditProducer, model: AuditedModel, rng: Any) -> None:
    """The training run on ds:customers in Frankfurt: its feature and score profiles become the
    drift reference; the artefact digest is the ONNX file's."""
    rows = customers(rng, 4000, campaign=False)
    with producer.training_run(
        model=MODEL, inputs=("ds:customers",), location=FRANKFURT, code_version="9f3e2d1",
        purpose="churn-analytics", parameters={"solver": "lbfgs", "C": 0.5}, run_id=RUN_ID,
    ) as run:  # fmt: skip
        scores = model.session.run(None, {model.input_name: rows})[0][:, 0]
        run.profile_features({name: rows[:, i].tolist() for i, name in enumerate(FEATURES)})
        run.profile_predictions(scores.tolist())
        run.log_metrics(**TRAINED, log_loss=0.41)
        run.set_output(VERSION, MODEL_FILE)


def ml_steps() -> list[Step]:
    """The model steps that are plain events: a training run on the health claims for a purpose
    they were not collected for, and the churn model's two deployments."""
    claims = {"run_id": "run-claims-7", "model_name": "claims-triage", "inputs": ("ds:claims",),
              "code_version": "51c0ffe", "location": FRANKFURT, "purpose": "marketing"}  # fmt: skip
    deployed = {"model_name": MODEL, "model_version": VERSION, "status": DeploymentStatus.DEPLOYED}
    return [
        Step(45, ML_TRAINING, TrainingRun, claims | {"status": RunStatus.STARTED},
             "training claims-triage on health claims for marketing", "PUR-COMPAT"),
        Step(48, ML_TRAINING, TrainingRun, claims | {"status": RunStatus.COMPLETED,
             "model_version": "1"}, "claims-triage:1 trained"),
        Step(55, CHURN_SERVING, ModelDeployed, deployed | {"deployment_id": "dep-churn-fra",
             "location": FRANKFURT}, "churn:4 deployed in Frankfurt"),
        Step(56, CHURN_SERVING, ModelDeployed, deployed | {"deployment_id": "dep-churn-iad",
             "location": VIRGINIA}, "churn:4 deployed in Virginia (trained on DE-pinned data)",
             "RES-PIN"),
    ]  # fmt: skip


@dataclass(frozen=True)
class Batch:
    """One served batch: when, how many rows, whether it is the campaign's customers."""

    hour: int
    index: int

    @property
    def at(self) -> Any:
        minutes = self.index * (60 // BATCHES_PER_HOUR) + 7
        return SERVING_START + timedelta(hours=self.hour, minutes=minutes)

    @property
    def campaign(self) -> bool:
        return self.hour in DRIFT_HOURS

    @property
    def batch_id(self) -> str:
        return f"{MODEL}-{VERSION}-{self.at:%H%M}"


def schedule() -> list[Batch]:
    return [Batch(h, i) for h in range(HOURS) for i in range(BATCHES_PER_HOUR)]


def serve(model: AuditedModel, batch: Batch, rng: Any) -> np.ndarray:
    """Score one batch of customers (German and French data subjects) in Frankfurt: the
    scores."""
    rows = customers(rng, BATCH_ROWS, campaign=batch.campaign)
    subjects = [("DE", "FR")[i % 2] for i in range(BATCH_ROWS)]
    scores: np.ndarray = model.predict_batch(
        rows, subject_jurisdictions=subjects, batch_id=batch.batch_id
    )[:, 0]
    return scores


def outcomes(batch: Batch, scores: np.ndarray, rng: Any) -> list[dict[str, Any]]:
    """Whether each scored customer churned (the ``Outcome`` bodies, known ``OUTCOME_DELAY``
    after the batch): a regular customer as the model said, less surely the closer its score
    is to 0.5; a campaign customer with a chance of 1 in 4, whatever the model said."""
    if batch.campaign:
        churned = rng.random(len(scores)) < 0.25
    else:
        said = scores >= 0.5
        churned = said ^ (rng.random(len(scores)) < 0.3 * (1 - abs(2 * scores - 1)))
    return [
        {"model_name": MODEL, "model_version": VERSION, "batch_id": batch.batch_id, "row": row,
         "label": "1" if left else "0"}
        for row, left in enumerate(churned.tolist())
    ]  # fmt: skip
