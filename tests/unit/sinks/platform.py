"""A fixture platform for lineage tests: datasets copied across regions, derived, trained on,
deployed and retired, with predictions, each event at a known time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from auditline.demo import ACME_EU, ACME_US, FRANKFURT, VIRGINIA
from auditline.events import (
    ZERO_HASH,
    AssetDeclared,
    DataMovement,
    Envelope,
    Event,
    ModelDeployed,
    Prediction,
    ProducerInfo,
    TrainingRun,
)
from auditline.integrity.chain import seal

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
PRODUCER = ProducerInfo(service="platform", instance="p1", location=FRANKFURT)
SINGAPORE = {"country": "SG", "provider": "aws", "region": "ap-southeast-1"}


class Stream:
    def __init__(self, name: str) -> None:
        self.name, self.sequence, self.prev = name, 0, ZERO_HASH

    def event(self, model: type[Event], minute: int, **body: Any) -> Event:
        envelope = Envelope(
            event_id=uuid4(), event_time=T0 + timedelta(minutes=minute), producer=PRODUCER,
            stream=self.name, sequence=self.sequence, prev_hash=self.prev, hash=ZERO_HASH,
        )  # fmt: skip
        sealed = seal(model(envelope=envelope, **body))
        self.sequence, self.prev = self.sequence + 1, sealed.envelope.hash
        return sealed


def asset(
    s: Stream,
    minute: int,
    asset_id: str,
    location: Any = FRANKFURT,
    derived: tuple[str, ...] = (),
    cls: str = "personal",
) -> Event:
    return s.event(AssetDeclared, minute, asset_id=asset_id, asset_kind="dataset", name=asset_id,
                   owner="team", classification=cls, location=location, derived_from=derived,
                   origin_jurisdictions=("EEA",))  # fmt: skip


def move(s: Stream, minute: int, src: str, dst: str, destination: Any) -> Event:
    return s.event(DataMovement, minute, asset_id=src, target_asset_id=dst, operation="copy",
                   source=FRANKFURT, destination=destination, records=10, bytes=100,
                   purpose="analytics", exporter=ACME_EU, importer=ACME_US,
                   mechanism={"kind": "scc", "mechanism_id": "scc-1"})  # fmt: skip


def train(
    s: Stream, minute: int, run: str, inputs: tuple[str, ...], model: str, version: str
) -> Event:
    return s.event(TrainingRun, minute, run_id=run, status="completed", model_name=model,
                   model_version=version, inputs=inputs, code_version="abc",
                   location=VIRGINIA, purpose="analytics")  # fmt: skip


def deploy(
    s: Stream,
    minute: int,
    dep: str,
    model: str,
    version: str,
    location: Any,
    status: str = "deployed",
) -> Event:
    return s.event(ModelDeployed, minute, deployment_id=dep, model_name=model,
                   model_version=version, status=status, location=location)  # fmt: skip


def predict(s: Stream, minute: int, model: str, version: str, location: Any) -> Event:
    return s.event(Prediction, minute, prediction_id=uuid4().hex, model_name=model,
                   model_version=version, location=location, subject_jurisdiction="DE",
                   score=0.5, latency_ms=1.0)  # fmt: skip


def platform() -> list[Event]:
    """raw(DE) → copy(US) → features(derived, US) → churn:1 → dep-a (US, retired at 60)
    raw → eu-copy(SG, at 50, after churn:1) ;  other(DE) → churn:2 (with features) → dep-b (SG)"""
    assets, moves, runs, deps, preds = (Stream(f"platform/p1/{n}") for n in
                                        ("assets", "movements", "training", "deployments", "predictions"))  # fmt: skip
    return [
        asset(assets, 0, "raw"),
        asset(assets, 1, "other"),
        move(moves, 5, "raw", "raw-us", VIRGINIA),
        asset(assets, 10, "features", VIRGINIA, derived=("raw-us",)),
        train(runs, 20, "r1", ("features",), "churn", "1"),
        deploy(deps, 30, "dep-a", "churn", "1", VIRGINIA),
        predict(preds, 31, "churn", "1", VIRGINIA),
        predict(preds, 32, "churn", "1", VIRGINIA),
        train(runs, 40, "r2", ("features", "other"), "churn", "2"),
        deploy(deps, 45, "dep-b", "churn", "2", SINGAPORE),
        predict(preds, 46, "churn", "2", SINGAPORE),
        move(moves, 50, "raw", "raw-sg", SINGAPORE),
        deploy(deps, 60, "dep-a", "churn", "1", VIRGINIA, status="retired"),
    ]
