"""The worker's state tables: faust tables seen as mappings of plain values.

Every worker holds the lineage state, the stream heads and the drift references whole, in faust
GlobalTables: each worker writes its own keys and reads every changelog partition, so it also
reads back what it wrote itself. faust applies that echo to the table, and an echo of an older
value can land after a newer value was written: the table went back in time for that key until
the newer echo arrived (faust applies changelog records to a global table's partitions in
batches of ``recovery_buffer_size``, so for a long time). A stream head read back one batch late
looks like a gap: 5,000 false ``gap`` alerts over 50,000 intact events from 200 producer
streams, measured. And with the batch of 1,000, a worker saw another worker's writes only every
1,000 records (lineage declared on one worker was missing on the other).

So each value this worker writes starts with a writer tag (``~<16 hex>~``, new for every
process), and ``WriterAwareGlobalTable`` applies every changelog record except this process's
own: its own writes are in its table already, the newest last. Records of other workers and of
earlier runs of this one (recovery after a restart) are applied, one by one as they arrive
(``recovery_buffer_size=1``, as faust's GlobalTable documentation advises for several workers).
A tombstone is not applied over a value this process wrote (a key deleted, then written again,
must not be deleted by the echo of the first deletion). Several workers writing one key remain
last-writer-wins, as in any shared faust table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from faust.tables.globaltable import GlobalTable

from auditline.derived import Derived

_DELETED = object()  # a JsonTable key popped since the last flush
TAG_LENGTH = 18  # "~" + 16 hex digits + "~"
PARSED_KEYS = 100_000  # parsed values kept per table (the raw text is in the table anyway)


def new_writer_tag() -> str:
    """A tag unique to this process (its writes are told from everybody else's by it)."""
    return f"~{uuid.uuid4().hex[:16]}~"


def _parse(raw: str) -> Any:
    return json.loads(payload(raw))


def payload(raw: str) -> str:
    """The JSON text of a stored value, without its writer tag (untagged values are JSON)."""
    return raw[TAG_LENGTH:] if raw.startswith("~") else raw


class WriterAwareGlobalTable(GlobalTable):
    """A GlobalTable that applies the changelog records of every writer but this process."""

    writer_tag = ""  # set by JsonTable; empty: every record is applied, as in faust

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        super().apply_changelog_batch([event for event in batch if not self._own(event)])

    def _own(self, event: Any) -> bool:
        tag = self.writer_tag
        if not tag:
            return False
        value = event.value if event.message.value is not None else None
        if value is None:  # a tombstone: keep a value this process wrote after it
            value = self.data.get(self._to_key(event.key))
        return isinstance(value, str) and value.startswith(tag)


class JsonTable:
    """A faust table of JSON text seen as a mapping of plain values (the detector's state).

    Writes are buffered and written to the table (and so to its changelog) by ``flush``, once per
    key per flush, tagged with ``writer`` when given (see the module doc); reads see the buffer
    first. A stored value is parsed once and the same object is returned until the stored text
    changes (``auditline.derived``, up to ``PARSED_KEYS`` keys): callers treat values as
    read-only, and the policy engine keeps its own objects for them (``PolicyEngine.constraints``).
    The parsed values cost memory beside their text.
    """

    def __init__(self, table: Any, *, writer: str = "") -> None:
        self.table = table
        self.writer = writer
        if writer and isinstance(table, WriterAwareGlobalTable):
            table.writer_tag = writer
        self._dirty: dict[str, Any] = {}
        self._parsed: Derived[Any] = Derived(_parse, PARSED_KEYS)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._dirty:
            value = self._dirty[key]
            return default if value is _DELETED else value
        raw = self.table.get(key)
        return default if raw is None else self._parsed.get(key, raw)

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self._dirty[key] = value

    def __contains__(self, key: object) -> bool:
        if key in self._dirty:
            return self._dirty[key] is not _DELETED
        return key in self.table

    def __iter__(self) -> Iterator[str]:
        """Every key, the buffered writes included."""
        yield from (key for key in list(self.table) if key not in self._dirty)
        yield from [key for key, value in self._dirty.items() if value is not _DELETED]

    def pop(self, key: str, default: Any = None) -> Any:
        value = self.get(key, default)
        if key in self:
            self._dirty[key] = _DELETED
        return value

    def flush(self) -> None:
        for key, value in self._dirty.items():
            if value is _DELETED:
                self.table.pop(key, None)
            else:
                self.table[key] = self.writer + json.dumps(value, separators=(",", ":"))
        self._dirty.clear()


class LocalOverlay(dict[str, Any]):
    """The policy state as the predictions agent sees it: reads fall through to the table, writes
    (the engine's once-per-model-country-day serving markers) stay on this worker."""

    def __init__(self, table: Any) -> None:
        super().__init__()
        self.table = table

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, self.table.get(key, default))

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key) if super().__contains__(key) else self.table[key]

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or key in self.table
