"""``auditline alerts tail``: alerts as they happen, one line each (or one JSON object a line).

Reads the alert topics without a consumer group (nothing committed, nobody else delayed): live
by default, or from ``--since`` / ``--from-beginning``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import IO

from auditline.alerting.source import AlertSource
from auditline.alerting.view import AlertView
from auditline.settings import AuditlineSettings

_MARK = {"critical": "!!", "high": "! ", "medium": "* ", "low": "- ", "info": "  "}


def line(alert: AlertView) -> str:
    """One alert for a person: when, how bad, which rule, what, where, the evidence ids."""
    evidence = ", ".join(alert.evidence[:3]) + (" ..." if len(alert.evidence) > 3 else "")
    state = f" {alert.state}" if alert.state else ""
    return (
        f"{alert.time}  {_MARK.get(alert.severity, '  ')}{alert.severity:<8} "
        f"{alert.kind} {alert.rule}{state}: {alert.title} | {alert.where} | evidence {evidence}"
    )


def tail(
    settings: AuditlineSettings,
    wanted: Callable[[AlertView], bool],
    *,
    start: str = "end",
    since_ms: int | None = None,
    as_json: bool = False,
    limit: int | None = None,
    idle_exit_s: float | None = None,
    out: IO[str] = sys.stdout,
) -> int:
    """Print matching alerts until ``limit`` of them, ``idle_exit_s`` without any, or Ctrl-C."""
    source = AlertSource.reader(settings, start, since_ms)
    shown, idle_since = 0, time.monotonic()
    try:
        while limit is None or shown < limit:
            batch = source.poll(0.5, 200)
            for alert in filter(wanted, batch):
                print(json.dumps(alert.to_json()) if as_json else line(alert), file=out, flush=True)
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
