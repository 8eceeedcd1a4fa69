"""``auditline check``: the policy detector over a file of JSON events, in file order.

Each line is one event in its model's JSON form with a ``kind`` (the event type name). The
``envelope`` may be left out for hand-written events: ``event_time`` (ISO-8601 with a zone) is
then given at the top level and ``event_id`` may be; the rest is filled in. Decisions other than a
plain allow are printed as JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from pydantic import ValidationError

from auditline.catalogue import Catalogue
from auditline.events import GIVEN, ZERO_HASH, Event
from auditline.policy.decisions import Decision
from auditline.policy.engine import PolicyEngine

CHECK_PRODUCER = {"service": "auditline-check", "instance": "file", "location": {"country": "ZZ"}}


@dataclass(frozen=True)
class BadInput(Exception):
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def parse_event(text: str, line: int, models: dict[str, type[Event]]) -> Event:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(line, f"not JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(data, dict) or "kind" not in data:
        raise BadInput(line, 'each line must be a JSON object with a "kind" (e.g. "DataMovement")')
    kind = data.pop("kind")
    model = models.get(kind)
    if model is None:
        raise BadInput(line, f"unknown kind {kind}; one of: {', '.join(sorted(models))}")
    if "envelope" not in data:
        if "event_time" not in data:
            raise BadInput(line, "event_time is required when the envelope is left out")
        data["envelope"] = {
            "event_id": data.pop("event_id", None) or str(uuid5(NAMESPACE_URL, f"check:{line}")),
            "event_time": data.pop("event_time"),
            "producer": CHECK_PRODUCER,
            "stream": "check",
            "sequence": line,
            "prev_hash": ZERO_HASH,
            "hash": ZERO_HASH,
        }
    try:
        return model.model_validate(data, context=GIVEN)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise BadInput(line, f"{kind}.{where}: {error['msg']}") from exc


def check(
    lines: Iterable[str], engine: PolicyEngine, state: dict[str, Any] | None = None
) -> Iterator[Decision]:
    """Decisions for the events in ``lines``; raises ``BadInput`` at the first unusable line."""
    models = {entry.model.__name__: entry.model for entry in Catalogue()}
    state = {} if state is None else state
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        yield from engine.evaluate(parse_event(text, number, models), state)
