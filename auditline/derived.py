"""Values derived from state values, kept while the state value is the same object (pure).

A state mapping (a dict, the worker's JSON tables) hands back the same object for a key until the
key is written again; what is derived from it (parsed JSON, a ``Constraints``, a drift
``Reference``) need not be derived again until then. The derived value is kept beside the object
it came from, so the object's identity cannot be reused while it is kept; at most ``limit`` keys
are kept, the one kept longest dropped first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Derived(Generic[T]):
    def __init__(self, derive: Callable[[Any], T], limit: int = 100_000) -> None:
        self.derive, self.limit = derive, limit
        self._kept: dict[str, tuple[Any, T]] = {}

    def get(self, key: str, source: Any) -> T:
        """``derive(source)``, computed once while ``source`` is the same object for ``key``."""
        kept = self._kept.get(key)
        if kept is not None and kept[0] is source:
            return kept[1]
        value = self.derive(source)
        self.put(key, source, value)
        return value

    def put(self, key: str, source: Any, value: T) -> None:
        """Keep ``value`` as what ``source`` derives to (its writer had it already)."""
        if key not in self._kept and len(self._kept) >= self.limit:
            del self._kept[next(iter(self._kept))]
        self._kept[key] = (source, value)
