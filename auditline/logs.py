"""How a command logs: auditline's own loggers at the chosen level, other libraries' from ERROR
(their retries are not news: the command's error line says what failed), as text or as one JSON
object a line for log collectors (``auditline --log-format json``)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}`` (+ ``error`` with an exception), one a line."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        return json.dumps(document)


def configure(level: str, form: str = "text", *, force: bool = False) -> None:
    """A filter on the handler, as libraries set their loggers' levels themselves
    (clickhouse-connect sets urllib3's); debug and info show every library's records.
    ``force`` replaces handlers a library installed (faust's worker does)."""
    own = logging.getLevelName(level)
    others = own if level in ("DEBUG", "INFO") else logging.ERROR

    def shown(record: logging.LogRecord) -> bool:
        return record.levelno >= (own if record.name.startswith("auditline") else others)

    before = set(logging.getLogger().handlers)
    logging.basicConfig(
        format="auditline: %(levelname)s %(name)s: %(message)s", level=level, force=force
    )
    for handler in logging.getLogger().handlers:
        if handler in before:  # the embedding program's own (pytest's, say): left as they are
            continue
        handler.addFilter(shown)
        if form == "json":
            handler.setFormatter(JsonFormatter())
