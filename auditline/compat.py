"""Avro schema compatibility, by the specification's schema-resolution rules (pure).

``problems(reader, writer)`` lists why data written with ``writer`` cannot be read with
``reader``; empty means compatible. Backward compatibility of a new schema is
``problems(new, old)``, forward is ``problems(old, new)``. Works on expanded schema JSON (named
types defined at first use, referenced by full name afterwards).
"""

from __future__ import annotations

from typing import Any

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}  # fmt: skip  (writer, reader)


def backward(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """Why readers using ``new`` cannot read data written with ``old``."""
    return problems(new, old)


def forward(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """Why readers still on ``old`` cannot read data written with ``new``."""
    return problems(old, new)


def problems(reader: Any, writer: Any) -> list[str]:
    return _Resolver().check(reader, writer, "")


class _Resolver:
    def __init__(self) -> None:
        self.reader_names: dict[str, Any] = {}
        self.writer_names: dict[str, Any] = {}
        self.done: set[tuple[str, str]] = set()

    def check(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader = self._resolve(reader, self.reader_names)
        writer = self._resolve(writer, self.writer_names)
        if isinstance(writer, list):
            return [p for branch in writer for p in self._to_reader(reader, branch, path)]
        if isinstance(reader, list):
            return self._to_union(reader, writer, path)
        rtype, wtype = _kind(reader), _kind(writer)
        if rtype != wtype:
            if (wtype, rtype) in _PROMOTIONS:
                return []
            return [f"{path or '<root>'}: writer type {wtype} cannot be read as {rtype}"]
        return self._same_kind(reader, writer, rtype, path)

    def _to_reader(self, reader: Any, branch: Any, path: str) -> list[str]:
        return self.check(reader, branch, f"{path}<{_kind(self._peek(branch))}>")

    def _to_union(self, reader: list[Any], writer: Any, path: str) -> list[str]:
        wkind = _kind(writer)
        for branch in reader:
            resolved = self._resolve(branch, self.reader_names)
            rkind = _kind(resolved)
            same = rkind == wkind and _name(resolved) == _name(writer)
            if same or (wkind, rkind) in _PROMOTIONS:
                return self.check(resolved, writer, path)
        return [f"{path or '<root>'}: no branch of the reader union reads writer type {wkind}"]

    def _same_kind(self, reader: Any, writer: Any, kind: str, path: str) -> list[str]:
        if kind in {"record", "enum", "fixed"} and _name(reader) != _name(writer):
            return [f"{path or '<root>'}: record name {_name(writer)} read as {_name(reader)}"]
        handlers = {
            "array": lambda: self.check(reader["items"], writer["items"], f"{path}[]"),
            "map": lambda: self.check(reader["values"], writer["values"], f"{path}{{}}"),
            "enum": lambda: self._enum(reader, writer, path),
            "fixed": lambda: _fixed(reader, writer, path),
            "record": lambda: self._record(reader, writer, path),
        }
        handler = handlers.get(kind)
        return handler() if handler else []

    def _enum(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            return [f"{path or '<root>'}: reader enum lacks {missing} and has no default"]
        return []

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
        key = (_name(reader), _name(writer))
        if key in self.done:
            return []
        self.done.add(key)
        written = {f["name"]: f for f in writer["fields"]}
        for wf in writer["fields"]:
            for alias in wf.get("aliases", []):
                written.setdefault(alias, wf)
        found: list[str] = []
        for rf in reader["fields"]:
            wf = next(
                (written[n] for n in [rf["name"], *rf.get("aliases", [])] if n in written), None
            )
            where = f"{path}.{rf['name']}" if path else rf["name"]
            if wf is None:
                if "default" not in rf:
                    found.append(f"{where}: reader field has no default and the writer lacks it")
                continue
            found.extend(self.check(rf["type"], wf["type"], where))
        return found

    def _resolve(self, node: Any, names: dict[str, Any]) -> Any:
        if isinstance(node, str):
            return names.get(node, node)
        if isinstance(node, dict) and node.get("type") in {"record", "enum", "fixed"}:
            names.setdefault(_name(node), node)
        return node

    def _peek(self, node: Any) -> Any:
        return self.writer_names.get(node, node) if isinstance(node, str) else node


def _fixed(reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
    if reader["size"] != writer["size"]:
        return [f"{path}: fixed size {writer['size']} read as {reader['size']}"]
    return []


def _kind(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "union"
    kind = node["type"]
    return kind if isinstance(kind, str) else _kind(kind)


def _name(node: Any) -> str:
    if not isinstance(node, dict) or "name" not in node:
        return ""
    return f"{node.get('namespace', '')}.{node['name']}".lstrip(".")
