"""Tamper evidence end to end: a real producer (Ed25519-signed, checkpointing) into the store,
then each kind of tampering an operator with write access to ClickHouse could do, and what
``auditline verify`` (read-only) says.

Covered: edit in place, delete in the middle, delete the tail, delete the tail together with the
checkpoints after it, delete a whole stream, reorder, a consistently re-chained forgery without
the key, a stream gone silent; and that a verifier holding only public keys cannot sign.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from auditline.sinks.migrate import migrate
from auditline.sinks.rows import Located
from auditline.sinks.store import Store, connect
from auditline.sinks.verification import attest, verify_log
from auditline.sinks.writer import StoreWriter

from auditline.catalogue import Catalogue
from auditline.cli import main
from auditline.codec import SingleObjectCodec
from auditline.demo import ACME_EU, ACME_US
from auditline.events import (
    AssetDeclared,
    DataMovement,
    ModelDeployed,
    Signature,
    StreamCheckpoint,
)
from auditline.integrity.chain import compute_hash, seal
from auditline.integrity.keyring import read_keyring, write_keyring
from auditline.integrity.signing import Ed25519Signer, signature_valid
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport, StoredMessage
from auditline.settings import AuditlineSettings, ClickHouseSettings

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)  # event times; checkpoints carry the wall clock
LATER = datetime.now(UTC) + timedelta(hours=1)  # every checkpoint settled, the producer closed
SOON = datetime.now(UTC) + timedelta(minutes=5)  # within the 10-minute cadence
ASSETS, MOVES, DEPLOYS = "svc/i1/assets", "svc/i1/movements", "svc/i1/deployments"
CHECKPOINTS = "svc/i1/checkpoints"
FRANKFURT = {"country": "DE", "provider": "aws", "region": "eu-central-1"}
VIRGINIA = {"country": "US", "provider": "aws", "region": "us-east-1"}


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    signer = Ed25519Signer.generate("svc-2026")
    private = tmp_path / "svc.pem"
    private.write_bytes(signer.private_pem())
    keyring = tmp_path / "keyring.json"
    write_keyring(keyring, {"svc-2026": signer.public_key})
    return private, keyring


def emit(broker: InProcessBroker, spool: Path, private: Path, *, close: bool = True) -> None:
    settings = AuditlineSettings(
        producer={"service": "svc", "instance": "i1", "country": "DE", "transport": "memory",
                  "signing_key_file": private, "signing_key_id": "svc-2026",
                  "require_signing": True, "checkpoint_interval_s": 600},
        spool={"path": spool, "fsync": "never"},
    )  # fmt: skip
    producer = AuditProducer(settings, transport=InProcessTransport(broker))
    for i in range(4):
        producer.emit(AssetDeclared, event_time=T0 + timedelta(minutes=i), asset_id=f"ds-{i}",
                      asset_kind="dataset", name=f"ds-{i}", owner="team",
                      classification="personal", location=FRANKFURT)  # fmt: skip
        producer.emit(DataMovement, event_time=T0 + timedelta(minutes=i), asset_id=f"ds-{i}",
                      operation="copy", source=FRANKFURT, destination=VIRGINIA, records=10,
                      bytes=100, purpose="analytics", exporter=ACME_EU, importer=ACME_US)  # fmt: skip
    producer.checkpoint()  # the cadence's checkpoint, taken now rather than in 10 minutes
    producer.emit(ModelDeployed, event_time=T0 + timedelta(minutes=9), deployment_id="d1",
                  model_name="m", model_version="1", status="deployed", location=VIRGINIA)  # fmt: skip
    producer.emit(AssetDeclared, event_time=T0 + timedelta(minutes=10), asset_id="ds-last",
                  asset_kind="dataset", name="last", owner="team", classification="personal",
                  location=FRANKFURT)  # fmt: skip
    assert producer.flush(10)
    if close:
        producer.close()  # the final checkpoint
    else:
        producer._stop.set()  # a crash: no final checkpoint
        producer.flush(1)


def load(store: Store, broker: InProcessBroker) -> None:
    codec = SingleObjectCodec(Catalogue())
    located = [
        Located(codec.decode(m.value), topic, 0, m.offset)
        for topic, messages in broker.topics.items()
        for m in messages
    ]
    StoreWriter(store).write(located)


@pytest.fixture
def platform(
    store_settings: ClickHouseSettings, keys: tuple[Path, Path], tmp_path: Path
) -> Iterator[tuple[Store, InProcessBroker, Path]]:
    broker = InProcessBroker()
    emit(broker, tmp_path / "spool", keys[0])
    store = connect(store_settings)
    migrate(store)
    load(store, broker)
    yield store, broker, keys[1]
    store.close()


def findings(store: Store, keyring: Path, **options: object) -> list[tuple[str, str, int]]:
    report = verify_log(
        store,
        keys=read_keyring(keyring),
        require_signature=options.pop("require_signature", True),  # type: ignore[arg-type]
        now=options.pop("now", LATER),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )
    return sorted((str(f.kind), f.stream, f.sequence) for f in report.findings)


def run(store: Store, sql: str, **parameters: object) -> None:
    store.command(sql.replace("LOG", f"`{store.database}`.audit_log"), parameters, mutations_sync=2)


def test_an_untouched_signed_log_verifies_against_its_checkpoints(
    platform: tuple[Store, InProcessBroker, Path],
) -> None:
    store, _, keyring = platform
    report = verify_log(store, keys=read_keyring(keyring), require_signature=True, now=LATER)
    assert report.ok, report.findings
    assert report.events == 12  # 10 events and 2 checkpoints
    assert report.anchors == 3 + 4  # each checkpoint anchors its own stream and the heads


def test_edit_in_place_is_tampered(platform: tuple[Store, InProcessBroker, Path]) -> None:
    store, _, keyring = platform
    run(store, "ALTER TABLE LOG UPDATE payload = replace(payload, '\"records\":10', "
        "'\"records\":1') WHERE stream = {s:String} AND sequence = 2", s=MOVES)  # fmt: skip
    assert findings(store, keyring) == [("tampered", MOVES, 2)]


def test_delete_in_the_middle_is_a_gap(platform: tuple[Store, InProcessBroker, Path]) -> None:
    store, _, keyring = platform
    run(store, "DELETE FROM LOG WHERE stream = {s:String} AND sequence = 1", s=ASSETS)
    assert findings(store, keyring) == [("gap", ASSETS, 2)]


def test_delete_the_tail_is_truncated(platform: tuple[Store, InProcessBroker, Path]) -> None:
    """Issue 11 item 1: the newest event of a stream deleted; the chain alone still verifies."""
    store, _, keyring = platform
    run(store, "DELETE FROM LOG WHERE stream = {s:String} AND sequence = 4", s=ASSETS)
    assert findings(store, keyring) == [("truncated", ASSETS, 4)]


def test_delete_the_tail_and_the_checkpoints_after_it(
    platform: tuple[Store, InProcessBroker, Path],
) -> None:
    """Both events after the first checkpoint and the final checkpoint deleted: the stored
    checkpoint stream now ends on a non-final checkpoint, silent past its cadence; the broker's
    copy of the checkpoints still names the deleted heads."""
    store, broker, keyring = platform
    run(store, "DELETE FROM LOG WHERE stream = {s:String} AND sequence = 4", s=ASSETS)
    run(store, "DELETE FROM LOG WHERE stream = {s:String}", s=DEPLOYS)
    run(store, "DELETE FROM LOG WHERE stream = {s:String} AND sequence = 1", s=CHECKPOINTS)
    assert findings(store, keyring, now=SOON) == []  # within the cadence
    assert findings(store, keyring) == [("silent", CHECKPOINTS, 0)]
    codec = SingleObjectCodec(Catalogue())
    from_broker = [codec.decode(m.value) for m in broker.topics["auditline.checkpoints"]]
    assert findings(store, keyring, broker_checkpoints=from_broker) == [
        ("silent", CHECKPOINTS, 0),
        ("truncated", ASSETS, 4),
        ("truncated", CHECKPOINTS, 1),
        ("vanished", DEPLOYS, 0),
    ]


def test_delete_a_whole_stream_is_vanished(
    platform: tuple[Store, InProcessBroker, Path],
) -> None:
    store, _, keyring = platform
    run(store, "DELETE FROM LOG WHERE stream = {s:String}", s=MOVES)
    assert findings(store, keyring) == [("vanished", MOVES, 3)]


def test_a_whole_producer_deleted_is_found_against_an_attestation(
    platform: tuple[Store, InProcessBroker, Path],
) -> None:
    store, _, keyring = platform
    key = bytes(range(32))
    report = verify_log(store, keys=read_keyring(keyring), now=LATER)
    assert attest(store, report, key) == 4
    run(store, "DELETE FROM LOG WHERE producer_service = 'svc'")
    assert findings(store, keyring, attestation_key=key) == [
        ("vanished", ASSETS, 4),
        ("vanished", CHECKPOINTS, 1),
        ("vanished", DEPLOYS, 0),
        ("vanished", MOVES, 3),
    ]
    store.command(
        f"ALTER TABLE `{store.database}`.chain_checkpoints UPDATE sequence = sequence + 1 WHERE 1",
        mutations_sync=2,
    )  # a rewritten attestation no longer carries a valid signature: it anchors nothing
    assert findings(store, keyring, attestation_key=key) == []


def test_reorder_is_found(platform: tuple[Store, InProcessBroker, Path]) -> None:
    """Two events swap places (their sequence columns and payload sequences exchanged)."""
    store, _, keyring = platform
    run(store, "ALTER TABLE LOG UPDATE sequence = if(sequence = 1, 2, 1), "
        "payload = replaceRegexpOne(payload, '\"sequence\":[12],', "
        "if(sequence = 1, '\"sequence\":2,', '\"sequence\":1,')) "
        "WHERE stream = {s:String} AND sequence IN (1, 2)", s=MOVES)  # fmt: skip
    found = findings(store, keyring)
    assert ("tampered", MOVES, 1) in found and ("tampered", MOVES, 2) in found


def test_a_consistently_rechained_forgery_without_the_key(
    platform: tuple[Store, InProcessBroker, Path],
) -> None:
    """Rewrite a stream from sequence 1 on with new content, recomputing every hash and link; the
    forger has no private key, so the signatures cannot follow, and the checkpoint disagrees."""
    store, _, keyring = platform
    _, rows = store.rows(
        f"SELECT sequence, payload FROM `{store.database}`.audit_log "
        "WHERE stream = {s:String} ORDER BY sequence",
        {"s": ASSETS},
    )
    events = [AssetDeclared.model_validate_json(payload) for _, payload in rows]
    prev = events[0].envelope.hash
    for event in events[1:]:
        forged = event.model_copy(update={"owner": "mallory"})
        envelope = forged.envelope.model_copy(update={"prev_hash": prev})
        forged = forged.model_copy(update={"envelope": envelope})
        envelope = envelope.model_copy(update={"hash": compute_hash(forged)})
        forged = forged.model_copy(update={"envelope": envelope})
        prev = envelope.hash
        run(store, "ALTER TABLE LOG UPDATE payload = {p:String}, hash = {h:String}, "
            "prev_hash = {v:String} WHERE stream = {s:String} AND sequence = {n:UInt64}",
            p=forged.model_dump_json(), h=envelope.hash, v=envelope.prev_hash, s=ASSETS,
            n=envelope.sequence)  # fmt: skip
    found = findings(store, keyring)
    assert {("bad_signature", ASSETS, n) for n in (1, 2, 3, 4)} <= set(found)
    assert ("tampered", ASSETS, 3) in found  # the first checkpoint attests the genuine seq 3
    assert not any(kind in {"gap", "broken_chain"} for kind, _, _ in found)


def test_a_producer_that_stopped_without_closing_goes_silent(
    store_settings: ClickHouseSettings, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    broker = InProcessBroker()
    emit(broker, tmp_path / "spool", keys[0], close=False)
    store = connect(store_settings)
    migrate(store)
    load(store, broker)
    assert findings(store, keys[1], now=SOON) == []
    assert findings(store, keys[1]) == [("silent", CHECKPOINTS, 0)]


def test_verify_is_read_only_and_the_cli_reports_truncation(
    platform: tuple[Store, InProcessBroker, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, _, keyring = platform
    monkeypatch.setenv("AUDITLINE_KEYRING_PATH", str(keyring))
    run(store, "DELETE FROM LOG WHERE stream = {s:String} AND sequence = 4", s=ASSETS)
    tables = f"SELECT name, total_rows FROM system.tables WHERE database = '{store.database}'"
    before = store.rows(tables)
    assert main(["verify", "--settle", "0", "--format", "json"]) == 1
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(f["finding"], f["stream"]) for f in found] == [("truncated", ASSETS)]
    assert store.rows(tables) == before  # nothing written, no checkpoint table rows
    assert main(["verify", "--producer", "nosuch"]) == 4
    assert "no producer service named nosuch" in capsys.readouterr().err


def test_a_verifier_with_public_keys_cannot_sign(keys: tuple[Path, Path]) -> None:
    public = read_keyring(keys[1])
    digest = bytes(32)
    signer = Ed25519Signer.from_file("svc-2026", keys[0])
    assert signature_valid(signer.sign(digest), digest, public) is True
    # all a verifier has is 32 public bytes: used as an HMAC secret or as a signature they fail
    key = public["svc-2026"].raw
    for algorithm, value in (("hmac_sha256", key), ("ed25519", key + key), ("ed25519", bytes(64))):
        forged = Signature(algorithm=algorithm, key_id="svc-2026", value=value)
        assert signature_valid(forged, digest, public) is False
    import hashlib
    import hmac

    mac = hmac.new(key, digest, hashlib.sha256).digest()
    hmac_forgery = Signature(algorithm="hmac_sha256", key_id="svc-2026", value=mac)
    assert signature_valid(hmac_forgery, digest, public) is False
    rotated = Signature(algorithm="ed25519", key_id="svc-2027", value=bytes(64))
    assert signature_valid(rotated, digest, public) is None  # unknown key id: reported as such


def forged_final_checkpoint(store: Store, heads: list[dict[str, object]]) -> StreamCheckpoint:
    """What a forger with write access but no key appends: a correctly chained, unsigned final
    checkpoint naming the shortened heads."""
    _, rows = store.rows(
        f"SELECT payload FROM `{store.database}`.audit_log WHERE stream = {{s:String}} "
        "ORDER BY sequence DESC LIMIT 1",
        {"s": CHECKPOINTS},
    )
    last = StreamCheckpoint.model_validate_json(rows[0][0])
    envelope = last.envelope.model_copy(update={
        "event_id": uuid4(), "sequence": last.envelope.sequence + 1,
        "prev_hash": last.envelope.hash, "signature": None,
    })  # fmt: skip
    forged = StreamCheckpoint(envelope=envelope, heads=heads, interval_ms=600_000, final=True)
    return seal(forged)


def test_an_unsigned_checkpoint_cannot_hide_a_deletion(
    platform: tuple[Store, InProcessBroker, Path],
) -> None:
    """Review finding: with a keyring configured, a forged unsigned checkpoint anchors nothing,
    even when the auditor did not ask for signatures on every event."""
    store, _, keyring = platform
    run(store, "DELETE FROM LOG WHERE stream = {s:String} AND sequence = 4", s=ASSETS)
    run(store, "DELETE FROM LOG WHERE stream = {s:String} AND sequence = 1", s=CHECKPOINTS)
    run(store, "DELETE FROM LOG WHERE stream = {s:String}", s=DEPLOYS)
    _, rows = store.rows(
        f"SELECT stream, max(sequence), argMax(hash, sequence) FROM `{store.database}`.audit_log "
        "WHERE stream IN ({a:String}, {m:String}) GROUP BY stream",
        {"a": ASSETS, "m": MOVES},
    )
    heads = [{"stream": st, "sequence": n, "hash": h} for st, n, h in rows]
    forged = forged_final_checkpoint(store, heads)
    load(store, _broker_with(forged))
    found = findings(store, keyring, require_signature=False)
    assert ("silent", CHECKPOINTS, 1) in found  # the forged one is stored, but trusted it is not
    with_broker = findings(store, keyring, require_signature=False,
                           broker_checkpoints=[forged])  # fmt: skip
    assert with_broker == found  # an unsigned checkpoint from the broker anchors nothing either


def _broker_with(event: StreamCheckpoint) -> InProcessBroker:
    broker = InProcessBroker()
    codec = SingleObjectCodec(Catalogue())
    broker.topics["auditline.checkpoints"] = [
        StoredMessage(0, b"", codec.encode(event), event.envelope.stream, 0, 0)
    ]
    return broker


def test_a_key_signs_only_for_its_services(
    platform: tuple[Store, InProcessBroker, Path], tmp_path: Path
) -> None:
    store, _, keyring = platform
    (key,) = read_keyring(keyring).values()
    other = tmp_path / "other.json"
    write_keyring(other, {"svc-2026": replace(key, services=frozenset({"payments"}))})
    assert read_keyring(other)["svc-2026"].services == {"payments"}
    found = findings(store, other)
    assert {kind for kind, _, _ in found} == {"bad_signature"} and len(found) == 12
    report = verify_log(store, keys=read_keyring(other), now=LATER)
    assert "may not sign for service svc" in report.findings[0].detail


def test_a_deleted_producer_is_vanished_not_unknown(
    platform: tuple[Store, InProcessBroker, Path],
) -> None:
    store, broker, keyring = platform
    codec = SingleObjectCodec(Catalogue())
    from_broker = [codec.decode(m.value) for m in broker.topics["auditline.checkpoints"]]
    run(store, "DELETE FROM LOG WHERE producer_service = 'svc'")
    found = findings(store, keyring, producer="svc", broker_checkpoints=from_broker)
    assert {kind for kind, _, _ in found} == {"vanished"} and len(found) == 4
