"""What the producer checks in a caller's input, and how it says what is wrong (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from auditline.errors import InvalidEventError
from auditline.events import Event
from auditline.events.types import UtcTime

_EVENT_TIME = TypeAdapter(UtcTime)


def event_time_of(value: datetime | None) -> datetime:
    """The event time given (validated: timezone-aware), or now, to the millisecond."""
    if value is None:
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)
    try:
        return _EVENT_TIME.validate_python(value)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise InvalidEventError(
            f"envelope.event_time: {message} (got {shown(value)})", field="envelope.event_time"
        ) from exc


def invalid_event(model: type[Event], exc: ValidationError) -> InvalidEventError:
    """The first validation error, as one line naming the field (and the value, if given)."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    got = "" if first["type"] == "missing" else f" (got {shown(first.get('input'))})"
    return InvalidEventError(f"{model.__name__}.{path}: {first['msg']}{got}{more}", field=path)


def shown(value: Any) -> str:
    """A rejected value for a person: JSON, shortened."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
