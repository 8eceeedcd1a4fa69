"""``auditline check``: the policy detector over a file of JSON events, in file order.

Each line is one event in its model's JSON form with a ``kind`` (the event type name). The
``envelope`` may be left out for hand-written events: ``event_time`` (ISO-8601 with a zone) is
then given at the top level and ``event_id`` may be; the rest is filled in. The whole input is
validated first: every problem of every bad line is reported and nothing is judged. Then decisions
other than a plain allow are printed as JSON lines; the exit status says whether any reached the
``--fail-on`` severity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from pydantic import ValidationError

from auditline.catalogue import Catalogue
from auditline.events import GIVEN, Event, unsent_envelope
from auditline.policy.decisions import Decision
from auditline.policy.engine import PolicyEngine


@dataclass(frozen=True)
class BadInput(Exception):
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class UnusableInput(Exception):
    """Every problem of every unusable line of an input (``check`` validates before judging)."""

    problems: tuple[BadInput, ...]

    def __str__(self) -> str:
        return "; ".join(map(str, self.problems))


SEVERITIES = ("info", "low", "medium", "high", "critical")
DEFAULT_FAIL_ON = "low"  # the lowest severity that is not informational


def parse_event(text: str, line: int, models: dict[str, type[Event]]) -> Event:
    """One event, or ``BadInput`` naming its first problem (``parse_problems``: every one)."""
    problems = parse_problems(text, line, models)
    if isinstance(problems, list):
        raise problems[0]
    return problems


def parse_problems(text: str, line: int, models: dict[str, type[Event]]) -> Event | list[BadInput]:
    """One event, or every problem of the line (each invalid field of the event)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [BadInput(line, f"not JSON: {exc.msg} at column {exc.colno}")]
    if not isinstance(data, dict) or "kind" not in data:
        return [
            BadInput(line, 'each line must be a JSON object with a "kind" (e.g. "DataMovement")')
        ]
    kind = data.pop("kind")
    model = models.get(kind) if isinstance(kind, str) else None
    if model is None:
        shown = kind if isinstance(kind, str) else json.dumps(kind)
        return [BadInput(line, f"unknown kind {shown}; one of: {', '.join(sorted(models))}")]
    if "envelope" not in data:
        if "event_time" not in data:
            return [BadInput(line, "event_time is required when the envelope is left out")]
        data["envelope"] = unsent_envelope(
            data.pop("event_id", None) or str(uuid5(NAMESPACE_URL, f"check:{line}")),
            data.pop("event_time"),
            service="auditline-check", instance="file", stream="check", sequence=line,
        )  # fmt: skip
    try:
        return model.model_validate(data, context=GIVEN)
    except ValidationError as exc:
        return [
            BadInput(line, f"{kind}.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}")
            for error in exc.errors()
        ]


def parse_all(lines: Iterable[str]) -> list[Event]:
    """Every event of ``lines``, or ``UnusableInput`` with every problem of every bad line."""
    models = {entry.model.__name__: entry.model for entry in Catalogue()}
    events: list[Event] = []
    problems: list[BadInput] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        parsed = parse_problems(text, number, models)
        if isinstance(parsed, list):
            problems += parsed
        else:
            events.append(parsed)
    if problems:
        raise UnusableInput(tuple(problems))
    return events


def check(
    lines: Iterable[str], engine: PolicyEngine, state: dict[str, Any] | None = None
) -> Iterator[Decision]:
    """Decisions for the events in ``lines``, in file order; the whole input is validated first
    (``UnusableInput`` before any decision)."""
    events = parse_all(lines)
    state = {} if state is None else state
    for event in events:
        yield from engine.evaluate(event, state)


def fails(decision: Decision, fail_on: str) -> bool:
    """Whether ``decision`` is at or above the ``fail_on`` severity (unknown ones fail)."""
    if decision.severity not in SEVERITIES:
        return True
    return SEVERITIES.index(decision.severity) >= SEVERITIES.index(fail_on)
