"""`auditline verify` over a stored log, beside a raw loop doing the same checks by hand.

log    = N Prediction events from one producer (SDK, in-process transport, Ed25519 or HMAC
         signatures, a checkpoint every 1,000 events), stored in the embedded engine (chDB)
raw    = stream the same rows, rebuild each event from its payload (pydantic), recompute its
         chain hash (SHA-256 over the canonical Avro bytes), check the link and the signature
verify = sinks.verification.verify_log: the same, plus the anchors (checkpoints, attestations,
         stored stream ends) and the findings

No broker needed. Ends with one JSON line: events/s of both per signature kind, ``ratio``
(verify / raw, Ed25519), and CPU microseconds per event of the process.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _report import report
from auditline.sinks.migrate import migrate
from auditline.sinks.rows import Located
from auditline.sinks.store import Store, connect
from auditline.sinks.verification import verify_log
from auditline.sinks.writer import StoreWriter

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import demo_events
from auditline.events import Prediction
from auditline.integrity.chain import compute_hash
from auditline.integrity.signing import Ed25519Signer, Keys, signature_valid
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings, ClickHouseSettings

N = 20_000
BODY = next(e for e in demo_events() if isinstance(e, Prediction)).model_dump(exclude={"envelope"})
HMAC_KEY = "44" * 32


def stored_log(root: Path, database: str, signing: dict[str, Any]) -> Store:
    settings = AuditlineSettings(
        producer={"service": "bench", "instance": "b1", "transport": "memory", **signing},
        spool={"path": str(root / f"spool-{database}"), "fsync": "never"},
    )  # fmt: skip
    broker = InProcessBroker()
    with AuditProducer(settings, transport=InProcessTransport(broker)) as producer:
        for _ in range(0, N, 1000):
            producer.emit_many(Prediction, [BODY] * 1000)
            producer.checkpoint()
        assert producer.flush(60)
    codec = SingleObjectCodec(Catalogue())
    located = [
        Located(codec.decode(m.value), topic, 0, m.offset)
        for topic, messages in broker.topics.items()
        for m in messages
    ]
    store = connect(ClickHouseSettings(dsn=f"chdb://{root / 'engine'}", database=database))
    migrate(store)
    writer = StoreWriter(store)
    for i in range(0, len(located), 5000):
        writer.write(located[i : i + 5000])
    return store


def raw_verify(store: Store, keys: Keys) -> int:
    rows = store.stream(
        f"SELECT stream, sequence, payload FROM `{store.database}`.audit_log "
        "WHERE kind = 'Prediction' ORDER BY stream, sequence"
    )
    heads: dict[str, str] = {}
    checked = 0
    for stream, _sequence, payload in rows:
        event = Prediction.model_validate_json(payload)
        env = event.envelope
        assert compute_hash(event) == env.hash
        assert heads.get(stream, env.prev_hash) == env.prev_hash
        assert env.signature is not None
        assert signature_valid(env.signature, bytes.fromhex(env.hash), keys)
        heads[stream] = env.hash
        checked += 1
    return checked


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="auditline-bench-verify-") as tmp:
        root = Path(tmp)
        signer = Ed25519Signer.generate("bench-ed")
        key_file = root / "bench.pem"
        key_file.write_bytes(signer.private_pem())
        kinds: dict[str, tuple[dict[str, Any], Keys]] = {
            "ed25519": (
                {"signing_key_file": str(key_file), "signing_key_id": "bench-ed"},
                {"bench-ed": signer.public_key},
            ),
            "hmac": (
                {"signing_key": HMAC_KEY, "signing_key_id": "bench-h"},
                {"bench-h": bytes.fromhex(HMAC_KEY)},
            ),
        }
        for kind, (signing, keys) in kinds.items():
            store = stored_log(root, f"bench_{kind}", signing)
            raw_s, _, checked = timed(lambda: raw_verify(store, keys))  # noqa: B023
            verify_s, verify_cpu, report_ = timed(
                lambda: verify_log(store, keys=keys, require_signature=True)  # noqa: B023
            )
            assert checked == N and report_.ok, report_.findings[:3]
            figures[f"raw_{kind}_eps"] = N / raw_s
            figures[f"verify_{kind}_eps"] = report_.events / verify_s
            figures[f"verify_{kind}_cpu_us_per_event"] = verify_cpu / report_.events * 1e6
        figures["ratio"] = figures["verify_ed25519_eps"] / figures["raw_ed25519_eps"]
    report("verify", figures, events=N)


if __name__ == "__main__":
    main()
