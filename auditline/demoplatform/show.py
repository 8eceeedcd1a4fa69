"""How the platform run looks: live progress (rich, when installed) and one line per alert.

The lines are plain text built here (pure functions over decisions, drift alert bodies and
integrity findings), so that they read the same with or without rich.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from auditline.integrity.verify import Finding
from auditline.policy.decisions import Decision

REGIMES = (
    ("RES-", "residency pins"),
    ("EU-", "EU GDPR chapter V"),
    ("UK-", "UK GDPR"),
    ("CN-", "China PIPL / CAC"),
    ("RU-", "Russia 152-FZ"),
    ("IN-", "India (RBI, DPDP)"),
    ("JP-", "Japan APPI"),
    ("PUR-", "purpose limitation"),
)


def regime_of(rule_id: str) -> str:
    return next((name for prefix, name in REGIMES if rule_id.startswith(prefix)), rule_id)


def when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value else "-" * 22


def violation_line(decision: Decision, at: datetime | None) -> str:
    facts = decision.facts
    route = f"{facts['from']}->{facts['to']}" if "from" in facts and "to" in facts else ""
    kind = decision.decision.replace("_", " ")
    return (f"{when(at)}  {kind.upper():<22} {decision.rule_id:<11} {decision.severity:<8} "
            f"{facts.get('hop', ''):<10} {route:<7} {decision.message}")  # fmt: skip


def drift_line(alert: Mapping[str, Any]) -> str:
    feature = _feature(alert["feature"])
    start, end = alert["window_start"], alert["window_end"]
    return (f"{when(end)}  DRIFT {alert['state']:<16} {alert['severity']:<20} "
            f"{alert['model_name']}:{alert['model_version']} {feature}: {alert['statistic']} "
            f"{alert['value']:.2f} (threshold {alert['threshold']:.2f}), window "
            f"{when(start)} to {when(end)}")  # fmt: skip


def quality_line(alert: Mapping[str, Any]) -> str:
    """A model-quality alert: the metric over the window's predictions joined to outcomes."""
    start, end = alert["window_start"], alert["window_end"]
    return (f"{when(end)}  MODEL QUALITY {alert['state']:<8} {alert['severity']:<20} "
            f"{alert['model_name']}:{alert['model_version']} {alert['metric']} "
            f"{alert['value']:.2f} (trained {alert['baseline']:.2f}, threshold "
            f"{alert['threshold']:.2f}) over {alert['outcomes']} outcomes, window {when(start)} "
            f"to {when(end)}")  # fmt: skip


def quality_summary(alerts: Iterable[Mapping[str, Any]]) -> str:
    """One line: which metrics' episodes opened and closed, and when (window ends)."""
    parts = []
    for state in ("opened", "closed"):
        chosen = [a for a in alerts if a["state"] == state]
        if chosen:
            names = sorted({a["metric"] for a in chosen})
            last = max(a["window_end"] for a in chosen)
            parts.append(f"{state} {when(last)} for {', '.join(names)}")
    return f"  {'model quality':<22} " + ("; ".join(parts) or "none")


def strongest(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The drift alerts worth a line: a feature whose drift opens (or closes) both its medium
    and its high episode in one window is shown once, at high (both are published)."""
    high = {
        (a["feature"], a["state"], a["window_start"]) for a in alerts if a["severity"] == "high"
    }
    return [
        a
        for a in alerts
        if a["severity"] == "high" or (a["feature"], a["state"], a["window_start"]) not in high
    ]


def strongest_quality(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The model-quality alerts worth a line: as ``strongest``, per metric."""
    return strongest([{**a, "feature": a["metric"]} for a in alerts])


def integrity_line(finding: Finding, at: datetime | None) -> str:
    return (f"{when(at)}  INTEGRITY {finding.kind!s:<12} {'critical':<20} stream "
            f"{finding.stream}, sequence {finding.sequence}: {finding.detail}")  # fmt: skip


def tally(decisions: Iterable[Decision]) -> list[str]:
    """One line per regime: its rules that fired and how often (allows left out)."""
    return tally_counts((d.rule_id, d.decision, 1) for d in decisions)


def tally_counts(counts: Iterable[tuple[str, str, int]]) -> list[str]:
    """``tally`` of (rule id, decision, how many) rows, e.g. from the store."""
    by_regime: dict[str, Counter[str]] = {}
    for rule_id, decision, n in counts:
        by_regime.setdefault(regime_of(rule_id), Counter())[f"{rule_id} {decision}"] += n
    return [
        f"  {regime:<22} " + ", ".join(f"{rule} x{n}" for rule, n in sorted(counts.items()))
        for regime, counts in sorted(by_regime.items())
    ]


def drift_summary(alerts: Iterable[Mapping[str, Any]]) -> str:
    """One line: which features' episodes opened and closed, and when (window ends)."""
    parts = []
    for state in ("opened", "closed"):
        chosen = [a for a in alerts if a["state"] == state]
        if chosen:
            names = sorted({_feature(a["feature"]) for a in chosen})
            last = max(a["window_end"] for a in chosen)
            parts.append(f"{state} {when(last)} for {', '.join(names)}")
    return f"  {'drift':<22} " + ("; ".join(parts) or "none")


@dataclass(frozen=True)
class StoredAlerts:
    """What the worker raised, as the sink stored it: (rule id, decision, how many) of the
    policy decisions that are not plain allows, the drift alerts (``state``, ``severity``,
    ``feature``, ``window_end``) and the streams the integrity alerts name."""

    rules: tuple[tuple[str, str, int], ...]
    drift: tuple[Mapping[str, Any], ...]
    integrity: tuple[str, ...]

    def summary(self) -> list[str]:
        """The lines the embedded run prints after the day: by regime, drift, integrity."""
        streams = ", ".join(self.integrity) or "nothing found"
        return [*tally_counts(self.rules), drift_summary(self.drift),
                f"  {'integrity':<22} {streams}"]  # fmt: skip


def _feature(name: str | None) -> str:
    if name is None:
        return "the model"
    return "the prediction scores" if name == "__prediction__" else name


class Display:
    """Progress over the story's steps and alerts printed above it as they fire: rich's live
    progress bar when rich is installed, plain lines otherwise."""

    def __init__(self, out: IO[str], total: int) -> None:
        self.out = out
        self.progress: Any = None
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        except ImportError:
            return
        console = Console(file=out, highlight=False, soft_wrap=True)
        self.progress = Progress(
            TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
            console=console, transient=False,
        )  # fmt: skip
        self.task = self.progress.add_task("starting", total=total)

    def __enter__(self) -> Display:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def step(self, caption: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=caption[:44], advance=1)

    def line(self, text: str, style: str = "") -> None:
        if self.progress is None:
            print(text, file=self.out)
            return
        from rich.text import Text

        self.progress.console.print(Text(text, style=style))
