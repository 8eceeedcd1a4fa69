"""The quick-start demo: a small AI platform's audit trail, emitted, decoded and verified.

It runs on the embedded default: the producer SDK (validation, hash chain, Ed25519 signature,
write-ahead spool, checkpoints) over the in-process transport, then every event is decoded and
each producer stream's chain and signatures verified. ``demo_events`` gives the same story as
ready-made sealed events for tests.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
    PolicyViolation,
    Prediction,
    ProducerInfo,
    RunStatus,
    TrainingRun,
    TransferMechanism,
)
from auditline.integrity.chain import seal
from auditline.integrity.keyring import read_keyring, write_keyring
from auditline.integrity.signing import Ed25519Signer
from auditline.integrity.verify import ChainVerifier
from auditline.policy.decisions import Decision
from auditline.producer.memory import InProcessBroker
from auditline.settings import AuditlineSettings

DEMO_KEY_ID = "demo"
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
        "run_id": "run-42", "status": RunStatus.STARTED, "model_name": "churn",
        "inputs": ("ds:customers-us",), "code_version": "a1b2c3d", "location": VIRGINIA,
        "purpose": "churn-analytics",
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
    with tempfile.TemporaryDirectory(prefix="auditline-demo-keys-") as keys:
        ok, _ = emit_and_verify(out, DemoKeys.make(Path(keys)))
    return _verdict(ok, out)


def _verdict(ok: bool, out: IO[str]) -> int:
    verdict = "intact" if ok else "BROKEN"
    print(f"\nround trip, hash chains and signatures: {verdict}", file=out)
    return 0 if ok else 1


@dataclass(frozen=True)
class DemoKeys:
    """The demo's Ed25519 key pair: producers sign with ``private``; verifiers read ``keyring``."""

    private: Path
    keyring: Path

    @classmethod
    def make(cls, directory: Path) -> DemoKeys:
        """The pair kept in ``directory``, generated on first use."""
        keys = cls(directory / "demo-signing.pem", directory / "keyring.json")
        if not (keys.private.exists() and keys.keyring.exists()):
            directory.mkdir(parents=True, exist_ok=True)
            signer = Ed25519Signer.generate(DEMO_KEY_ID)
            keys.private.write_bytes(signer.private_pem())
            keys.private.chmod(0o600)
            write_keyring(keys.keyring, {DEMO_KEY_ID: signer.public_key})
        return keys

    def producer(self, service: str, instance: str) -> dict[str, Any]:
        return {"service": service, "instance": instance, "country": "DE", "transport": "memory",
                "signing_key_file": self.private, "signing_key_id": DEMO_KEY_ID,
                "require_signing": True}  # fmt: skip


def emit_and_verify(out: IO[str], keys: DemoKeys) -> tuple[bool, InProcessBroker]:
    """Emit the demo story through the producer SDK (embedded default: in-process transport),
    read it back, decode and verify every stream's chain and signatures."""
    from auditline.producer import AuditProducer
    from auditline.producer.memory import InProcessTransport

    with tempfile.TemporaryDirectory(prefix="auditline-demo-") as spool:
        settings = AuditlineSettings(
            producer=keys.producer("demo-platform", "demo-1"),
            spool={"path": spool, "fsync": "never"},
        )
        broker = InProcessBroker()
        start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        with AuditProducer(settings, transport=InProcessTransport(broker)) as producer:
            for minute, (model, body) in enumerate(_bodies()):
                producer.emit(model, event_time=start + timedelta(minutes=minute), **body)
            delivered = producer.flush(10)
    codec = SingleObjectCodec(Catalogue())
    verifier = ChainVerifier({}, read_keyring(keys.keyring), require_signature=True)
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


def judge_and_alert(broker: InProcessBroker, keys: DemoKeys, out: IO[str]) -> list[Decision]:
    """The detector stage, as the worker does it: the default policy pack over the emitted events
    (embedded runner), each decision published as a signed PolicyViolation next to them."""
    from auditline.alerting.bodies import violation_body
    from auditline.policy.engine import PolicyEngine
    from auditline.policy.model import load_policy
    from auditline.producer import AuditProducer
    from auditline.producer.memory import InProcessTransport
    from auditline.runner import EmbeddedRunner

    policy = load_policy()
    runner = EmbeddedRunner(PolicyEngine(policy), read_keyring(keys.keyring))
    result = runner.run_broker(broker)
    print("\npolicy decisions (default pack, embedded runner):", file=out)
    for d in result.decisions:
        hop = d.facts.get("hop", "")
        print(f"  {d.decision:<22} {d.rule_id:<10} {d.severity:<8} [{hop}] {d.message}", file=out)
    print(f"  integrity findings: {len(result.findings)}", file=out)
    with tempfile.TemporaryDirectory(prefix="auditline-demo-") as spool:
        settings = AuditlineSettings(
            producer=keys.producer("demo-worker", "worker-1"),
            spool={"path": spool, "fsync": "never"},
        )
        with AuditProducer(settings, transport=InProcessTransport(broker)) as producer:
            bodies = [violation_body(d, policy.version) for d in result.decisions]
            producer.emit_many(PolicyViolation, bodies)
    return result.decisions
