"""The integrity check in the worker: each producer stream's chain, judged once per record.

``ChainJudge`` runs the ``ChainVerifier`` over the stream heads kept in a JSON table (the
worker's GlobalTable). Delivery is at least once: after a restart a worker reads again the
records after its last committed offset, which the verifier would take for a producer replaying
events (``duplicate``/``reorder`` findings that are not true). So each head also keeps, per
source partition, the offset of the last record judged, written in the same table value as the
head; a record at or below it is recognised as read again and not judged a second time, while a
replay by the producer (a new record, a new offset) is still flagged.
"""

from __future__ import annotations

import contextlib
from typing import Any

from auditline.events import Event
from auditline.integrity.chain import canonical_from_body
from auditline.integrity.signing import Keys
from auditline.integrity.verify import ChainVerifier, Finding, StreamHead


class HeadTable:
    """ChainVerifier state (stream -> StreamHead) over a JSON table, with the judged offsets.

    While a record is judged (``judging`` .. ``judged``), its stream's value is read once, and the
    record is marked judged in the same write as the stream's new head: one table read and one
    write per record."""

    def __init__(self, table: Any) -> None:
        self.table = table  # JsonTable: stream -> {next_sequence, last_hash, read: {src: offset}}
        self._judging: tuple[str, Any, str, int] | None = None  # stream, value, source, offset

    def judging(self, stream: str, source: str, offset: int) -> bool:
        """Start judging a record of ``stream``; False when it was judged before (a re-read)."""
        raw = self.table.get(stream)
        if raw and offset <= raw.get("read", {}).get(source, -1):
            return False
        self._judging = (stream, raw, source, offset)
        return True

    def judged(self) -> None:
        """End judging: a record whose head the verifier kept (a replay) is marked judged too."""
        if self._judging is not None:
            stream, raw, source, offset = self._judging
            self._judging = None
            if raw:
                self.table[stream] = {**raw, "read": {**raw.get("read", {}), source: offset}}

    def abandon(self) -> None:
        """End judging without marking the record judged (its check failed)."""
        self._judging = None

    def _value(self, key: str) -> Any:
        judging = self._judging
        return judging[1] if judging is not None and judging[0] == key else self.table.get(key)

    def get(self, key: str, default: StreamHead | None = None) -> StreamHead | None:
        raw = self._value(key)
        return StreamHead(raw["next_sequence"], raw["last_hash"]) if raw else default

    def __setitem__(self, key: str, head: StreamHead) -> None:
        raw = self._value(key)
        read = raw.get("read", {}) if raw else {}
        judging = self._judging
        if judging is not None and judging[0] == key:
            read, self._judging = {**read, judging[2]: judging[3]}, None
        self.table[key] = {
            "next_sequence": head.next_sequence, "last_hash": head.last_hash, "read": read,
        }  # fmt: skip


class ChainJudge:
    """Integrity findings per record, once per record (``message``: topic, partition, offset)."""

    def __init__(self, table: Any, keys: Keys | None = None) -> None:
        self.heads = HeadTable(table)
        self.verifier = ChainVerifier(self.heads, keys)  # type: ignore[arg-type]

    def judge(self, event: Event, body: bytes | None, message: Any) -> list[Finding] | None:
        """The findings for this record; None when it was judged before (a re-read)."""
        stream = event.envelope.stream
        if not self.heads.judging(stream, f"{message.topic}:{message.partition}", message.offset):
            return None
        canonical = None
        if body is not None:
            # a body not in the layout its schema_version names cannot carry a valid hash:
            # re-encoding in that layout (canonical None) reports it as tampered
            with contextlib.suppress(ValueError):
                canonical = canonical_from_body(body, event.envelope.schema_version)
        try:
            findings = self.verifier.observe(event, canonical)
        except BaseException:
            self.heads.abandon()  # not marked judged: read again, it is judged again
            raise
        self.heads.judged()
        return findings
