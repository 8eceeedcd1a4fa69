"""Rendering results for people and tools: an aligned table, Markdown, JSON lines or CSV (pure).

Cells are written for people: no Python reprs. ``None`` is empty, lists are comma-separated,
times are ISO 8601 with their zone (naive times are UTC, as ClickHouse returns them), maps are
``key=value`` pairs; JSON keeps lists and maps as JSON.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any


def iso_time(value: str) -> datetime:
    """A command-line time: ISO 8601, UTC when it has no zone (an argparse ``type``)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{value} is not an ISO time (e.g. 2026-03-01T12:00Z; no zone: UTC)"
        ) from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def cell(value: Any) -> str:
    """One value as text for a table, Markdown or CSV cell."""
    text: str
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, datetime):
        text = (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    elif isinstance(value, Enum):
        text = str(value.value)
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        text = ", ".join(cell(v) for v in value)
    else:
        text = str(value)  # str, numbers, dates, UUIDs
    return text


def json_value(value: Any) -> Any:
    """A value for JSON output: times in ISO with their zone, ids as strings."""
    if isinstance(value, datetime):
        return cell(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return cell(value)


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> str:
    if fmt == "json":
        return "\n".join(
            json.dumps({c: json_value(v) for c, v in zip(columns, row, strict=True)})
            for row in rows
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows([cell(v) for v in row] for row in rows)
        return buffer.getvalue().rstrip("\n")
    if fmt == "markdown":
        return markdown_table(columns, rows)
    cells = [[str(c) for c in columns], *[[cell(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, f"({len(rows)} rows)"])


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def escaped(value: Any) -> str:
        return cell(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(escaped(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
