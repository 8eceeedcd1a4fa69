"""YAML settings files validated by pydantic, with errors as ``file:line: field: what``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditline.errors import AuditlineError, ConfigError

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound=BaseModel)
P = TypeVar("P", bound="PerModel[Any]")


class PerModel(BaseModel, Generic[C]):
    """Settings of a detector per model: ``defaults`` for every model, and under ``models`` a
    model name's overrides (any of the defaults' fields; checked when the file is read)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    defaults: C
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def for_model(self, name: str) -> C:
        overrides = self.models.get(name)
        if not overrides:
            return self.defaults
        return type(self.defaults).model_validate({**self.defaults.model_dump(), **overrides})


def load_per_model(path: Path | None, model: type[P], what: str) -> P:
    """Per-model settings from the YAML file at ``path``; the defaults without one."""
    if path is None:
        return model.model_validate({})
    settings = load_model(Path(path), model, ConfigError, what)
    for name in settings.models:
        try:
            settings.for_model(name)
        except ValidationError as exc:
            loc = ("models", name, *exc.errors()[0]["loc"])
            root = yaml.compose(Path(path).read_text(encoding="utf-8"))
            raise ConfigError(_where(path, root, loc, exc.errors()[0]["msg"])) from exc
    return settings


def load_model(path: Path, model: type[M], error: type[AuditlineError], what: str) -> M:
    """``model`` from the YAML file at ``path``; ``error`` naming file, line and field if not."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
        data = {} if data is None else data  # an empty file: every default
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise error(_where(path, root, first["loc"], first["msg"])) from exc


def _where(path: Path, root: Any, loc: tuple[Any, ...], message: str) -> str:
    """``file:line: field: what`` (no field for the file as a whole)."""
    field = ".".join(str(p) for p in loc)
    return f"{path}:{line_of(root, loc)}: {field + ': ' if field else ''}{message}"


def line_of(node: Any, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
