"""``auditline alerts tail``: alerts as they happen, one line each (or one JSON object a line).

Reads the alert topics without a consumer group (nothing committed, nobody else delayed): live
by default, or from ``--since`` / ``--from-beginning``. On a terminal, with ``rich`` installed
(the ``alerts`` extra) and without ``--plain``, each line is coloured by severity; anywhere else
(a pipe, a file, a script) it is the plain ``line`` below, unchanged.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from auditline.alerting.source import AlertSource
from auditline.alerting.view import AlertView
from auditline.settings import AuditlineSettings

if TYPE_CHECKING:
    from rich.text import Text

Printer = Callable[[AlertView], None]
SEVERITY_STYLE = {
    "critical": "bold red", "high": "red", "medium": "yellow", "low": "dim", "info": "dim",
}  # fmt: skip
# C0, DEL and C1 controls: an alert's text must not move the cursor or recolour the terminal
_CONTROLS = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], "\ufffd")
_MARK = {"critical": "!!", "high": "! ", "medium": "* ", "low": "- ", "info": "  "}


def line(alert: AlertView) -> str:
    """One alert for a person: when, how bad, which rule, what, where, the evidence ids."""
    evidence = _evidence(alert)
    state = f" {alert.state}" if alert.state else ""
    return (
        f"{alert.time}  {_MARK.get(alert.severity, '  ')}{alert.severity:<8} "
        f"{alert.kind} {alert.rule}{state}: {alert.title} | {alert.where} | evidence {evidence}"
    )


def _evidence(alert: AlertView) -> str:
    return ", ".join(alert.evidence[:3]) + (" ..." if len(alert.evidence) > 3 else "")


def styled(alert: AlertView) -> Text:
    """The same line for a terminal: severity coloured, fields set apart (needs ``rich``)."""
    from rich.text import Text

    evidence = _evidence(alert)
    parts: list[tuple[str, str]] = [
        (alert.time, "dim"), ("  ", ""),
        (f"{alert.severity:<8}", SEVERITY_STYLE.get(alert.severity, "")), (" ", ""),
        (alert.kind, "cyan"), (" ", ""), (alert.rule, "bold"),
        *([(" ", ""), (alert.state, "magenta")] if alert.state else []),
        ("  ", ""), (alert.title, "bold" if alert.severity == "critical" else ""),
        ("  ", ""), (alert.where, "blue"), ("  evidence ", "dim"), (evidence, "dim"),
    ]  # fmt: skip
    return Text.assemble(*((text.translate(_CONTROLS), style) for text, style in parts))


def printer(out: IO[str], *, as_json: bool = False, plain: bool = False) -> Printer:
    """How each alert is written: JSON; coloured on a terminal (unless ``plain``, or ``rich`` is
    not installed: the SDK alone); else the plain ``line``. Each is flushed at once (live)."""
    if as_json:
        return lambda alert: print(json.dumps(alert.to_json()), file=out, flush=True)
    if not plain and out.isatty():
        try:
            from rich.console import Console
        except ImportError:
            pass
        else:  # NO_COLOR and TERM=dumb are honoured by rich itself
            console = Console(file=out, highlight=False, soft_wrap=True)
            return lambda alert: console.print(styled(alert))
    return lambda alert: print(line(alert), file=out, flush=True)


def tail(
    settings: AuditlineSettings,
    wanted: Callable[[AlertView], bool],
    *,
    start: str = "end",
    since_ms: int | None = None,
    as_json: bool = False,
    plain: bool = False,
    limit: int | None = None,
    idle_exit_s: float | None = None,
    out: IO[str] = sys.stdout,
) -> int:
    """Print matching alerts until ``limit`` of them, ``idle_exit_s`` without any, or Ctrl-C."""
    show = printer(out, as_json=as_json, plain=plain)
    source = AlertSource.reader(settings, start, since_ms)
    shown, idle_since = 0, time.monotonic()
    try:
        while limit is None or shown < limit:
            batch = source.poll(0.5, 200)
            for alert in filter(wanted, batch):
                show(alert)
                shown += 1
                if limit is not None and shown >= limit:
                    break
            if batch:
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                break
    finally:
        source.close()
    return shown
