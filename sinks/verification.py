"""``auditline verify`` (read-only) and ``auditline attest``: the audit log against its anchors.

``verify_log`` reads, never writes. Each stored row's event is rebuilt from its payload and run
through the core ``ChainVerifier`` (the same logic as the integrity processor), so a row changed
in place (payload or hash column), a deleted row (a gap), a duplicate, a reordering or a forged
signature is reported. Then every stream's stored end is judged against its anchors
(``auditline.integrity.anchors``): the producers' signed checkpoints stored in the log, earlier
attestations, and any the caller brings (the broker's copy of the checkpoints topic), so deleting
the newest events of a stream, or a whole stream, is reported too.

``attest`` (a separate command, for a writer role) stores the verified heads in
``chain_checkpoints``, HMAC-signed when a checkpoint key is configured; later runs of
``verify_log`` read them back as anchors.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from auditline.catalogue import Catalogue
from auditline.errors import NotFoundError
from auditline.events import IntegrityKind, StreamCheckpoint
from auditline.integrity.anchors import (
    Anchor,
    StoredEnd,
    checkpoint_anchors,
    judge,
    newest_cadences,
)
from auditline.integrity.signing import Keys
from auditline.integrity.verify import ChainVerifier, Finding, StreamHead, verify_event

from .store import Store

DEFAULT_SETTLE = timedelta(seconds=60)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class VerifyReport:
    streams: int = 0
    events: int = 0
    anchors: int = 0
    findings: list[Finding] = field(default_factory=list)
    heads: dict[str, StreamHead] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class VerifyOptions:
    """What one verification trusts and how long it lets anchors settle."""

    keys: Keys = field(default_factory=dict)
    require_signature: bool = False
    attestation_key: bytes | None = None
    settle: timedelta = DEFAULT_SETTLE

    @property
    def signed_checkpoints_only(self) -> bool:
        """With any key configured, an unsigned checkpoint anchors nothing (else anyone with write
        access could append one that hides a deletion)."""
        return self.require_signature or bool(self.keys)


def verify_log(
    store: Store,
    *,
    producer: str | None = None,
    since: datetime | None = None,
    keys: Keys | None = None,
    require_signature: bool = False,
    broker_checkpoints: Iterable[StreamCheckpoint] = (),
    extra_anchors: Iterable[Anchor] = (),
    now: datetime | None = None,
    settle: timedelta = DEFAULT_SETTLE,
    attestation_key: bytes | None = None,
    streams: Iterable[str] | None = None,
) -> VerifyReport:
    """Chains, signatures and anchors of the stored log (``streams``: only these)."""
    options = VerifyOptions(keys or {}, require_signature, attestation_key, settle)
    only = set(streams) if streams is not None else None
    trusted = _trusted(store, producer, options)
    anchors = _anchors(store, trusted, options, broker_checkpoints) + list(extra_anchors)
    if producer:
        anchors = [a for a in anchors if a.stream.split("/", 1)[0] == producer]
        if not anchors and not _producer_known(store, producer):
            raise NotFoundError(
                f"no producer service named {producer} in {store.database}.audit_log "
                "or in any checkpoint or attestation"
            )
    if only is not None:
        anchors = [a for a in anchors if a.stream in only]
    report = VerifyReport(anchors=len(anchors))
    verifier = ChainVerifier({}, options.keys, require_signature=require_signature)
    anchored = {(a.stream, a.sequence) for a in anchors}
    stored_hashes = _walk_chains(store, report, (producer, since, only), verifier, anchored)
    ends = _stored_ends(store, producer)
    cadences = newest_cadences(c for c, _ in trusted)
    report.findings += judge(
        anchors,
        ends if only is None else {k: v for k, v in ends.items() if k in only},
        stored_hashes,
        [c for c in cadences.values() if only is None or c.stream in only],
        now=now or datetime.now(UTC),
        settle=settle,
    )
    return report


def _anchors(
    store: Store,
    trusted: list[tuple[StreamCheckpoint, datetime]],
    options: VerifyOptions,
    broker_checkpoints: Iterable[StreamCheckpoint],
) -> list[Anchor]:
    anchors = [a for c, seen in trusted for a in checkpoint_anchors(c, "store", seen)]
    anchors += [
        a
        for c in broker_checkpoints
        if _trustworthy(c, options)
        for a in checkpoint_anchors(c, "broker")
    ]
    return anchors + _attestations(store, options.attestation_key)


def _walk_chains(
    store: Store,
    report: VerifyReport,
    where: tuple[str | None, datetime | None, set[str] | None],
    verifier: ChainVerifier,
    anchored: set[tuple[str, int]],
) -> dict[tuple[str, int], str]:
    """Every stored row through the chain verifier; the stored hashes at anchored places."""
    producer, since, only = where
    models = {entry.model.__name__: entry.model for entry in Catalogue()}
    rows = store.stream(  # streamed: memory holds one block and the stream heads, not the log
        f"SELECT stream, sequence, event_id, kind, hash, prev_hash, payload "
        f"FROM `{store.database}`.audit_log "
        "WHERE ({producer:String} = '' OR producer_service = {producer:String}) "
        "AND ({all:Bool} OR stream IN {streams:Array(String)}) "
        "AND event_time >= {since:DateTime64(3, 'UTC')} ORDER BY stream, sequence, event_time",
        {"producer": producer or "", "since": since or _EPOCH, "all": only is None,
         "streams": sorted(only or ())},
    )  # fmt: skip
    state = verifier.state
    stored: dict[tuple[str, int], str] = {}
    for stream, sequence, event_id, kind, hash_column, prev_column, payload in rows:
        if since is not None and stream not in state:  # start mid-stream: trust the first link
            state[stream] = StreamHead(sequence, prev_column)
        report.events += 1
        report.findings += _check_row(
            verifier, models, stream, sequence, event_id, kind, hash_column, payload
        )
        if (stream, sequence) in anchored:
            stored[(stream, sequence)] = hash_column
    report.streams = len(state)
    report.heads = dict(state)
    return stored


def _check_row(  # noqa: PLR0917 - one audit-log row, column by column
    verifier: ChainVerifier,
    models: dict[str, Any],
    stream: str,
    sequence: int,
    event_id: Any,
    kind: str,
    hash_column: str,
    payload: str,
) -> list[Finding]:
    try:
        event = models[kind].model_validate_json(payload)
    except (KeyError, ValidationError) as exc:
        return [
            Finding(
                IntegrityKind.TAMPERED,
                stream,
                str(event_id),
                sequence,
                f"stored payload is not a valid {kind}: {str(exc).splitlines()[0]}",
            )
        ]
    found = verifier.observe(event)
    if event.envelope.hash != hash_column or event.envelope.sequence != sequence:
        found.append(
            Finding(
                IntegrityKind.TAMPERED,
                stream,
                str(event_id),
                sequence,
                "hash or sequence column differs from the stored event",
            )
        )
    return found


def _producer_known(store: Store, producer: str) -> bool:
    _, rows = store.rows(
        f"SELECT 1 FROM `{store.database}`.audit_log WHERE producer_service = {{p:String}} LIMIT 1",
        {"p": producer},
    )
    return bool(rows)


def _trusted(
    store: Store, producer: str | None, options: VerifyOptions
) -> list[tuple[StreamCheckpoint, datetime]]:
    """Stored checkpoints (with when they were stored) whose own hash and signature hold: a
    forged one anchors nothing."""
    rows = store.stream(
        f"SELECT payload, ingested_at FROM `{store.database}`.audit_log "
        "WHERE kind = 'StreamCheckpoint' "
        "AND ({producer:String} = '' OR producer_service = {producer:String})",
        {"producer": producer or ""},
    )
    trusted = []
    for payload, ingested_at in rows:
        try:
            checkpoint = StreamCheckpoint.model_validate_json(payload)
        except ValidationError:
            continue  # reported as tampered by the chain walk
        if _trustworthy(checkpoint, options):
            seen = ingested_at if ingested_at.tzinfo else ingested_at.replace(tzinfo=UTC)
            trusted.append((checkpoint, seen))
    return trusted


def _trustworthy(checkpoint: StreamCheckpoint, options: VerifyOptions) -> bool:
    return not verify_event(
        checkpoint, options.keys, require_signature=options.signed_checkpoints_only
    )


def _stored_ends(store: Store, producer: str | None) -> dict[str, StoredEnd]:
    _, rows = store.rows(
        f"SELECT stream, max(sequence), argMax(hash, sequence) FROM `{store.database}`.audit_log "
        "WHERE ({producer:String} = '' OR producer_service = {producer:String}) GROUP BY stream",
        {"producer": producer or ""},
    )
    return {stream: StoredEnd(int(sequence), digest) for stream, sequence, digest in rows}


def _attestations(store: Store, key: bytes | None) -> list[Anchor]:
    """Earlier ``attest`` heads; with a key, only those whose signature holds."""
    _, rows = store.rows(
        f"SELECT stream, sequence, hash, verified_at, signature "
        f"FROM `{store.database}`.chain_checkpoints"
    )
    anchors = []
    for stream, sequence, digest, verified_at, signature in rows:
        if key is not None and signature != _attestation_mac(key, stream, sequence, digest):
            continue
        at = verified_at if verified_at.tzinfo else verified_at.replace(tzinfo=UTC)
        anchors.append(
            Anchor(stream, int(sequence), digest, f"attestation of {at.isoformat()}", at)
        )
    return anchors


def _attestation_mac(key: bytes, stream: str, sequence: int, digest: str) -> str:
    return hmac.new(key, f"{stream}|{sequence}|{digest}".encode(), hashlib.sha256).hexdigest()


def attest(store: Store, report: VerifyReport, key: bytes | None) -> int:
    """Store the verified head of every intact stream; returns how many were written."""
    now = datetime.now(UTC)
    broken = {f.stream for f in report.findings}
    rows = []
    for stream, head in sorted(report.heads.items()):
        if stream in broken:
            continue  # a head that did not verify is no anchor for later runs
        sequence = head.next_sequence - 1
        signature = _attestation_mac(key, stream, sequence, head.last_hash) if key else None
        rows.append((stream, sequence, head.last_hash, now, 0, signature))
    store.insert(
        "chain_checkpoints",
        ["stream", "sequence", "hash", "verified_at", "findings", "signature"],
        rows,
    )
    return len(rows)
