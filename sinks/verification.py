"""``auditline verify``: recompute every producer stream's hash chain from the audit log.

Each row's event is rebuilt from its stored payload and run through the core ``ChainVerifier``
(the same logic as the integrity processor), so a row changed in place (payload or its hash
column), a deleted row (a gap), a duplicate or a forged signature is reported. Verified heads
are stored as chain checkpoints, HMAC-signed when a checkpoint key is configured.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from auditline.catalogue import Catalogue
from auditline.events import IntegrityKind
from auditline.verify import ChainVerifier, Finding, StreamHead

from .store import Store


@dataclass
class VerifyReport:
    streams: int = 0
    events: int = 0
    findings: list[Finding] = field(default_factory=list)
    heads: dict[str, StreamHead] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_log(
    store: Store,
    *,
    producer: str | None = None,
    since: datetime | None = None,
    keys: dict[str, bytes] | None = None,
    require_signature: bool = False,
) -> VerifyReport:
    models = {entry.model.__name__: entry.model for entry in Catalogue()}
    rows = store.stream(  # streamed: memory holds one block and the stream heads, not the log
        f"SELECT stream, sequence, event_id, kind, hash, prev_hash, payload "
        f"FROM `{store.database}`.audit_log "
        "WHERE ({producer:String} = '' OR producer_service = {producer:String}) "
        "AND event_time >= {since:DateTime64(3, 'UTC')} ORDER BY stream, sequence, event_time",
        {"producer": producer or "", "since": since or datetime(1970, 1, 1, tzinfo=UTC)},
    )
    state: dict[str, StreamHead] = {}
    verifier = ChainVerifier(state, keys, require_signature=require_signature)
    report = VerifyReport()
    for stream, sequence, event_id, kind, hash_column, prev_column, payload in rows:
        if since is not None and stream not in state:  # start mid-stream: trust the first link
            state[stream] = StreamHead(sequence, prev_column)
        report.events += 1
        report.findings += _check_row(
            verifier, models, stream, sequence, event_id, kind, hash_column, payload
        )
    report.streams = len(state)
    report.heads = dict(state)
    return report


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


def checkpoint(store: Store, report: VerifyReport, key: bytes | None) -> int:
    """Store the verified head of every stream; returns how many were written."""
    now = datetime.now(UTC)
    rows = []
    for stream, head in sorted(report.heads.items()):
        message = f"{stream}|{head.next_sequence - 1}|{head.last_hash}".encode()
        signature = hmac.new(key, message, hashlib.sha256).hexdigest() if key else None
        failures = sum(1 for f in report.findings if f.stream == stream)
        rows.append((stream, head.next_sequence - 1, head.last_hash, now, failures, signature))
    store.insert(
        "chain_checkpoints",
        ["stream", "sequence", "hash", "verified_at", "findings", "signature"],
        rows,
    )
    return len(rows)
