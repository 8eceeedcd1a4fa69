"""The quick-start demo: a small AI platform's audit trail, emitted, decoded and verified.

It runs on the embedded default: the producer SDK (validation, hash chain, HMAC signature,
write-ahead spool) over the in-process transport, then every event is decoded and each producer
stream's chain and signatures verified. ``demo_events`` gives the same story as ready-made
sealed events for tests.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from uuid import UUID, uuid5

from auditline.catalogue import Catalogue
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
from auditline.integrity.chain import seal
from auditline.integrity.verify import ChainVerifier
from auditline.producer.memory import InProcessBroker
from auditline.settings import AuditlineSettings

DEMO_KEY_HEX = "d3" * 32  # the demo's HMAC signing key (key id "demo")
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
    keys = ("asset_id", "destination", "model_name", "model_version", "score")
    return ", ".join(f"{k}={json.dumps(fields[k])}" for k in keys if k in fields)


def run_demo(out: IO[str]) -> int:
    """The core demo: emit, decode, verify; prints the verdict last."""
    ok, _ = emit_and_verify(out)
    return _verdict(ok, out)


def _verdict(ok: bool, out: IO[str]) -> int:
    verdict = "intact" if ok else "BROKEN"
    print(f"\nround trip, hash chains and signatures: {verdict}", file=out)
    return 0 if ok else 1


def emit_and_verify(out: IO[str]) -> tuple[bool, InProcessBroker]:
    """Emit the demo story through the producer SDK (embedded default: in-process transport),
    read it back, decode and verify every stream's chain and signatures."""
    from auditline.producer import AuditProducer
    from auditline.producer.memory import InProcessTransport

    key = DEMO_KEY_HEX
    with tempfile.TemporaryDirectory(prefix="auditline-demo-") as spool:
        settings = AuditlineSettings(
            producer={"service": "demo-platform", "instance": "demo-1", "country": "DE",
                      "transport": "memory", "signing_key": key, "signing_key_id": "demo"},
            spool={"path": spool, "fsync": "never"},
        )  # fmt: skip
        broker = InProcessBroker()
        start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        with AuditProducer(settings, transport=InProcessTransport(broker)) as producer:
            for minute, (model, body) in enumerate(_bodies()):
                producer.emit(model, event_time=start + timedelta(minutes=minute), **body)
            delivered = producer.flush(10)
    codec = SingleObjectCodec(Catalogue())
    verifier = ChainVerifier({}, {"demo": bytes.fromhex(key)}, require_signature=True)
    print("auditline demo: SDK -> in-process transport -> decode -> verify\n", file=out)
    print(f"{'stream':<34} {'seq':>3} {'bytes':>5}  hash          summary", file=out)
    problems = []
    for messages in broker.topics.values():
        for message in messages:
            event = codec.decode(message.value)
            problems += verifier.observe(event)
            print(
                f"{event.envelope.stream:<34} {event.envelope.sequence:>3} {len(message.value):>5}"
                f"  {event.envelope.hash[:12]}  {type(event).__name__}: {_summary(event)}",
                file=out,
            )
    for problem in problems:
        print(f"  ! {problem.kind}: {problem.detail}", file=out)
    return delivered and not problems, broker
