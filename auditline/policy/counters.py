"""Yearly counters in the policy state, safe with several writers (pure).

China's export volumes (per exporter and year) and Art. 49 derogation uses (per exporter,
country and year) are read by every worker and added to by the one judging the movement.
Workers share one state (a global table) but hold different input partitions; if they all
rewrote one key, concurrent additions would overwrite each other (the last writer wins and the
count falls short). So a writer adds to its own shard (``<key>@<shard>``: the worker's input
partition, held by one worker at a time) and the total is the sum over every shard, plus the
unsharded key that a single writer (the embedded runner, ``check``) and earlier versions use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shards:
    """Every shard a counter may have (the worker: ``p0`` … ``p<partitions - 1>``)."""

    names: tuple[str, ...] = ()

    @classmethod
    def partitions(cls, count: int) -> Shards:
        return cls(tuple(f"p{n}" for n in range(count)))

    def own_key(self, key: str, shard: str) -> str:
        """Where the writer of ``shard`` keeps its part of ``key`` (the key itself unsharded)."""
        return f"{key}@{shard}" if shard else key

    def parts(self, state: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        """Every stored part of the counter ``key``."""
        keys = (key, *(f"{key}@{name}" for name in self.names))
        return [part for k in keys if (part := state.get(k)) is not None]


def total(parts: Sequence[Mapping[str, Any]], field: str) -> int:
    return sum(int(part.get(field, 0)) for part in parts)
