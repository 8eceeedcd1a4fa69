"""The auditor's SQL door: one read-only query over the audit database, and nothing else.

Layers, each the engine's own doing wherever the engine offers one:

1. **One statement, canonical.** ClickHouse's parser (``formatQuerySingleLine``, the query passed
   as a bound string, so it cannot inject) turns the text into one canonical statement without
   comments, or refuses it (several statements, syntax errors).
2. **A subquery.** The canonical statement runs as ``SELECT * FROM (…)``: clauses that act on
   the host outside a query's data (``INTO OUTFILE``, ``FORMAT``) and anything but a SELECT are
   syntax errors inside a subquery.
3. **What it resolves to.** ClickHouse's analyzer (``EXPLAIN QUERY TREE``) names every table,
   table function and function the query uses, after aliases, CTEs and views are resolved. Only
   tables of the audit database (and ``system.one``/``numbers``/``zeros``) and a few generator
   table functions pass; functions that reach files, dictionaries or join tables are refused.
   (The embedded engine has no access control of its own — ``CREATE USER`` is refused — so this
   is where its tables are scoped; on a server, also connect as the ``auditline_auditor`` role.)
4. **Settings.** ``readonly = 1`` (no writes, no settings changes, no table functions that read
   files, URLs or other servers), plus bounds on time, memory and result size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from auditline.errors import ConfigError, SinkError

from .store import Store

_ALLOWED_SYSTEM = frozenset({"system.one", "system.numbers", "system.zeros"})
_ALLOWED_TABLE_FUNCTIONS = frozenset({"numbers", "zeros", "generate_series", "generateSeries"})
_REFUSED_FUNCTIONS = frozenset({
    "file", "joinGet", "joinGetOrNull", "getSetting", "getSettingOrDefault", "getMacro",
    "hasColumnInTable", "getServerSetting", "getMergeTreeSetting", "filesystemAvailable",
    "filesystemCapacity", "filesystemUnreserved", "currentUser", "currentProfiles",
    "currentRoles", "enabledRoles", "defaultRoles", "initialQueryID", "queryID",
})  # fmt: skip
_REFUSED_PREFIXES = ("dict",)  # dictGet*, dictHas ...: dictionaries may read any source
_ONE_SELECT = "auditline sql runs one read-only SELECT over the audit database"
_WRAPPER_DEPTH = 3  # EXPLAIN AST indentation of the wrapping SELECT's own clauses
_CALL = re.compile(r"^\s*Function (\w+)")  # EXPLAIN AST: a call, table functions included
_NAME = re.compile(r"\b(table_name|table_function_name|function_name): ([^,\s]+)")


@dataclass(frozen=True)
class Bounds:
    """What one auditor query may take."""

    seconds: float = 60.0
    max_result_rows: int = 1_000_000
    max_memory_bytes: int = 2 * 1024**3

    def settings(self) -> dict[str, Any]:
        return {
            "readonly": 1,
            "max_execution_time": self.seconds,
            "max_result_rows": self.max_result_rows,
            "result_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
        }


def refusals(names: Iterable[tuple[str, str]], database: str) -> list[str]:
    """Why a query's resolved names are not allowed (pure); empty when they all are."""
    found = []
    for kind, name in names:
        if kind == "table_name":
            if not (name.startswith(f"{database}.") or name in _ALLOWED_SYSTEM):
                found.append(f"table {name} is outside the audit database {database}")
        elif kind == "table_function_name":
            if name not in _ALLOWED_TABLE_FUNCTIONS:
                found.append(f"table function {name}() is not allowed")
        elif name in _REFUSED_FUNCTIONS or name.startswith(_REFUSED_PREFIXES):
            found.append(f"function {name}() is not allowed")
    return sorted(set(found))


def _is_inner_settings(line: str) -> bool:
    """A SETTINGS clause inside the auditor's query (deeper than the wrapping query's own, which
    the embedded client adds for the bounds)."""
    return line.strip() == "Set" and len(line) - len(line.lstrip()) > _WRAPPER_DEPTH


def _engine_reason(exc: Exception) -> str:
    """The engine's reason without the echo of our own wrapping query."""
    match = re.search(r"DB::Exception: (.*?)(?:: In scope |\. \(\w+\)|$)", str(exc))
    return match.group(1) if match else str(exc)


def run(store: Store, query: str, bounds: Bounds) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows of one auditor query, or a ``ConfigError`` saying what was refused."""
    store.client.database = store.database  # unqualified names are the audit database's
    limits = bounds.settings()
    try:
        _, canonical = store.rows(
            "SELECT formatQuerySingleLine({q:String})", {"q": query}, **limits
        )
        wrapped = f"SELECT * FROM ({canonical[0][0]})"
        _, syntax = store.rows(f"EXPLAIN AST {wrapped}", **limits)  # parses, runs nothing
    except SinkError as exc:
        raise ConfigError(f"{_ONE_SELECT}: {_engine_reason(exc)}") from exc
    lines = [str(line) for (line,) in syntax]
    if any(_is_inner_settings(line) for line in lines):
        raise ConfigError(f"{_ONE_SELECT}: SETTINGS clauses are not allowed (see --timeout)")
    # functions are refused on the parse, before the analyzer folds constants (which runs them)
    called = [("function_name", m.group(1)) for line in lines if (m := _CALL.match(line))]
    refused = refusals(called, store.database)
    if refused:
        raise ConfigError(f"{_ONE_SELECT}: " + "; ".join(refused))
    try:
        _, tree = store.rows(f"EXPLAIN QUERY TREE {wrapped}", **limits)
    except SinkError as exc:
        raise ConfigError(f"{_ONE_SELECT}: {_engine_reason(exc)}") from exc
    names = [m.groups() for (line,) in tree for m in _NAME.finditer(str(line))]
    refused = refusals(((k, v) for k, v in names), store.database)
    if refused:
        raise ConfigError(f"{_ONE_SELECT}: " + "; ".join(refused))
    return store.rows(wrapped, **limits)
