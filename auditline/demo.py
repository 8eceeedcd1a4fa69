"""The quick-start demo: a small AI platform's audit trail, encoded, decoded and chain-checked.

At this stage (foundation) it runs fully in-process: events are built as a service would emit
them, sealed into one hash chain, encoded with the single-object framing, decoded again and
verified. Later stages route the same events through the producer SDK, the stream processors
and the embedded ClickHouse engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from uuid import UUID, uuid5

from auditline.catalogue import Catalogue
from auditline.chain import hash_matches, seal
from auditline.codec import SingleObjectCodec
from auditline.events import (
    ZERO_HASH,
    AssetDeclared,
    AssetKind,
    Classification,
    DataMovement,
    DeploymentStatus,
    Envelope,
    Event,
    Location,
    MechanismKind,
    ModelDeployed,
    MovementOperation,
    Party,
    PartyRole,
    Prediction,
    ProducerInfo,
    RunStatus,
    TrainingRun,
    TransferMechanism,
)

_NS = UUID("6f1d3c1e-0000-4000-8000-00000000a0d1")
FRANKFURT = Location(country="DE", provider="aws", region="eu-central-1")
VIRGINIA = Location(country="US", provider="aws", region="us-east-1")
ACME_EU = Party(entity_id="acme-gmbh", name="ACME GmbH", role=PartyRole.CONTROLLER, country="DE")
ACME_US = Party(entity_id="acme-inc", name="ACME Inc.", role=PartyRole.PROCESSOR, country="US")


def _bodies() -> Iterator[tuple[type[Event], dict[str, Any]]]:
    yield AssetDeclared, {
        "asset_id": "ds:customers", "asset_kind": AssetKind.DATASET, "name": "customers",
        "owner": "crm-team", "classification": Classification.PERSONAL, "location": FRANKFURT,
        "origin_jurisdictions": ("EEA",), "subject_jurisdictions": ("DE", "FR"),
        "residency": ("DE",), "collection_purposes": ("service", "churn-analytics"),
    }  # fmt: skip
    yield DataMovement, {
        "asset_id": "ds:customers", "target_asset_id": "ds:customers-us",
        "operation": MovementOperation.COPY, "source": FRANKFURT, "destination": VIRGINIA,
        "records": 120_000, "bytes": 48_000_000, "distinct_subjects": 118_500,
        "subject_jurisdictions": ("DE", "FR"), "purpose": "churn-analytics",
        "exporter": ACME_EU, "importer": ACME_US,
        "mechanism": TransferMechanism(kind=MechanismKind.SCC, mechanism_id="scc-2024-17",
                                       module="c2p"),
    }  # fmt: skip
    yield TrainingRun, {
        "run_id": "run-42", "status": RunStatus.COMPLETED, "model_name": "churn",
        "model_version": "3", "inputs": ("ds:customers-us",), "code_version": "a1b2c3d",
        "parameters": {"max_depth": "6"}, "location": VIRGINIA, "purpose": "churn-analytics",
        "metrics": {"auc": 0.91},
    }  # fmt: skip
    yield ModelDeployed, {
        "deployment_id": "dep-7", "model_name": "churn", "model_version": "3",
        "status": DeploymentStatus.DEPLOYED, "location": VIRGINIA,
    }  # fmt: skip
    for i, (tenure, plan) in enumerate([(3.0, "basic"), (27.0, "pro"), (11.0, "basic")]):
        yield Prediction, {
            "prediction_id": f"p-{i}", "model_name": "churn", "model_version": "3",
            "location": VIRGINIA, "subject_jurisdiction": "DE",
            "numeric_features": {"tenure_months": tenure}, "categorical_features": {"plan": plan},
            "score": round(1 / (1 + tenure / 10), 3), "latency_ms": 1.7,
        }  # fmt: skip


def demo_events(start: datetime | None = None) -> list[Event]:
    """The demo story as one sealed producer stream (sequence 0.., hash-chained)."""
    start = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    producer = ProducerInfo(service="demo-platform", instance="demo-1", location=FRANKFURT)
    events: list[Event] = []
    prev_hash = ZERO_HASH
    for sequence, (model, body) in enumerate(_bodies()):
        envelope = Envelope(
            event_id=uuid5(_NS, f"demo-{sequence}"),
            event_time=start + timedelta(minutes=sequence),
            producer=producer,
            stream="demo-platform/demo-1",
            sequence=sequence,
            prev_hash=prev_hash,
            hash=ZERO_HASH,
        )
        event = seal(model(envelope=envelope, **body))
        prev_hash = event.envelope.hash
        events.append(event)
    return events


def _summary(event: Event) -> str:
    fields = event.model_dump(mode="json", exclude={"envelope"})
    keys = ("asset_id", "destination", "model_name", "model_version", "location", "score")
    return ", ".join(f"{k}={json.dumps(fields[k])}" for k in keys if k in fields)


def run_demo(out: IO[str]) -> int:
    """Encode, decode and verify the demo stream, printing what an auditor would see."""
    catalogue = Catalogue()
    codec = SingleObjectCodec(catalogue)
    print("auditline demo: one producer stream, single-object Avro framing\n", file=out)
    print(f"{'seq':>3}  {'event':<14} {'topic':<22} {'bytes':>5}  hash          summary", file=out)
    prev_hash, ok = ZERO_HASH, True
    for event in demo_events():
        wire = codec.encode(event)
        decoded = codec.decode(wire)
        linked = decoded.envelope.prev_hash == prev_hash and hash_matches(decoded)
        ok = ok and decoded == event and linked
        prev_hash = decoded.envelope.hash
        topic = catalogue.for_model(type(event)).topic
        print(
            f"{event.envelope.sequence:>3}  {type(event).__name__:<14} {topic:<22} "
            f"{len(wire):>5}  {decoded.envelope.hash[:12]}  {_summary(decoded)}",
            file=out,
        )
    verdict = "intact" if ok else "BROKEN"
    print(f"\nround trip and hash chain: {verdict}", file=out)
    return 0 if ok else 1
