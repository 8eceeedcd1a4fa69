"""Judging an event whose lineage has not been read yet (pure).

In a stream the events of one platform travel on several topics, read side by side: a backlog
is read in chunks per partition, so a training run can be read long before the movement that
created its input, and judged without the constraints it inherits (a missed violation). The
embedded runner judges in event-time order and does not have this problem; the worker does.

``Deferrals`` wraps the engine. An event that needs a lineage node (``asset:<id>``,
``model:<name>:<version>``) not in the state yet is, while the caller says more input is still
to be read (``may_wait``), kept in the state instead of judged. When an event provides that
node, the events waiting for it are judged right after it, in event-time order (and may release
others in turn); a node put in the state by another holder (another partition, or another
worker through the shared table) releases its waiting events at the next ``release``. Once the
caller has read every partition past an event's time (``release``), the event is judged on what
is known, as it would have been without deferral. Deferred events
live in the state mapping (the worker's changelog-backed table), so a restart keeps them; their
number is bounded (``MAX_PER_NODE``, ``MAX_NODES``), beyond which an event is judged at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditline.events import (
    AssetDeclared,
    DataMovement,
    Event,
    ModelDeployed,
    RunStatus,
    TrainingRun,
)
from auditline.policy.decisions import Decision
from auditline.policy.engine import PolicyEngine, State

Judged = tuple[Event, Decision]
INDEX = "deferred"  # the nodes that events wait for
MAX_PER_NODE = 200  # events held for one node (a few hundred KB as JSON)
MAX_NODES = 5_000  # nodes waited for; beyond either bound an event is judged at once
_KINDS: dict[str, type[Event]] = {
    m.__name__: m for m in (AssetDeclared, DataMovement, TrainingRun, ModelDeployed)
}


def needs(event: Event) -> list[str]:
    """The lineage nodes this event is judged against."""
    if isinstance(event, DataMovement):
        return [f"asset:{event.asset_id}"]
    if isinstance(event, TrainingRun):
        return [f"asset:{source}" for source in event.inputs]
    if isinstance(event, ModelDeployed):
        return [f"model:{event.model_name}:{event.model_version}"]
    if isinstance(event, AssetDeclared):
        return [f"asset:{parent}" for parent in event.derived_from]
    return []


def provides(event: Event) -> list[str]:
    """The lineage nodes this event puts in the state."""
    if isinstance(event, AssetDeclared):
        return [f"asset:{event.asset_id}"]
    if isinstance(event, DataMovement) and event.target_asset_id:
        return [f"asset:{event.target_asset_id}"]
    if (
        isinstance(event, TrainingRun)
        and event.status == RunStatus.COMPLETED
        and event.model_version
    ):
        return [f"model:{event.model_name}:{event.model_version}"]
    return []


def _order(event: Event) -> tuple[Any, ...]:
    return (event.envelope.event_time, event.envelope.stream, event.envelope.sequence)


class Deferrals:
    """The engine, with events held back until their lineage is known (see the module doc)."""

    def __init__(self, engine: PolicyEngine, state: State, space: str = "") -> None:
        """``space``: a name for this holder's keys, when several share one state (the worker
        has one per input partition number, so workers sharing a global table never write the
        same keys)."""
        self.engine = engine
        self.state = state
        self.space = space  # also the counters' shard this holder adds to (policy/counters.py)
        self.index_key = f"{INDEX}@{space}" if space else INDEX

    def judge(self, event: Event, *, may_wait: bool) -> list[Judged]:
        """(event, decision) of this event and of the events it let be judged."""
        missing = [node for node in needs(event) if node not in self.state]
        if missing and may_wait and self._room(missing[0]):
            self._defer(event, missing[0])
            return []
        decisions = [(event, d) for d in self.engine.evaluate(event, self.state, self.space)]
        for node in provides(event):
            if node in self.state and node in self._index():  # waited for, and now known
                decisions += self._judge_all(self._take(node), may_wait=True)
        return decisions

    def release(self, through_ms: int | None = None) -> list[Judged]:
        """Judge the waiting events whose node is in the state now, though no event judged here
        provided it (another holder's partition, or another worker through the shared table),
        and those up to ``through_ms`` (event time; None: all) on what is known now: the caller
        has read every partition at least that far, so their lineage is not coming any more."""
        decisions: list[Judged] = []
        while True:
            index = self._index()
            known = [node for node in index if node in self.state]
            for node in known:
                decisions += self._judge_all(self._take(node), may_wait=True)
            nodes = [n for n, t in index.items()
                     if n not in known and (through_ms is None or t <= through_ms)]  # fmt: skip
            if not nodes and not known:
                return decisions
            held = [event for node in nodes for event in self._take(node)]
            due = [e for e in held if through_ms is None or event_millis(e) <= through_ms]
            later = [e for e in held if through_ms is not None and event_millis(e) > through_ms]
            decisions += self._judge_all(due, may_wait=False)
            decisions += self._judge_all(later, may_wait=True)

    def waiting(self) -> int:
        return sum(len(self.state.get(self._key(node)) or []) for node in self._index())

    def _judge_all(self, events: list[Event], *, may_wait: bool) -> list[Judged]:
        decisions: list[Judged] = []
        for event in sorted(events, key=_order):
            decisions += self.judge(event, may_wait=may_wait)
        return decisions

    def _room(self, node: str) -> bool:
        """Bounded: a state value stays far below a Kafka message's size limit."""
        index = self._index()
        if node in index:
            return len(self.state.get(self._key(node)) or []) < MAX_PER_NODE
        return len(index) < MAX_NODES

    def _defer(self, event: Event, node: str) -> None:
        key = self._key(node)
        raw = {"kind": type(event).__name__, "event": event.model_dump(mode="json")}
        self.state[key] = [*(self.state.get(key) or []), raw]
        index = dict(self._index())
        index[node] = min(index.get(node, event_millis(event)), event_millis(event))
        self.state[self.index_key] = index

    def _take(self, node: str) -> list[Event]:
        raw = self.state.pop(self._key(node), None) or []
        index = dict(self._index())
        index.pop(node, None)
        if index:
            self.state[self.index_key] = index
        else:
            self.state.pop(self.index_key, None)
        return [_KINDS[r["kind"]].model_validate(r["event"]) for r in raw]

    def _index(self) -> Mapping[str, int]:
        """node -> the earliest event time (ms) of the events waiting for it (read only)."""
        return self.state.get(self.index_key) or {}

    def _key(self, node: str) -> str:
        return f"{self.index_key}:{node}"


def event_millis(event: Event) -> int:
    """The event time in epoch milliseconds (how held events and read progress are compared)."""
    return int(event.envelope.event_time.timestamp() * 1000)
