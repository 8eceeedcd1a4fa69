"""`alerts tail` output: coloured lines on a terminal (rich), the plain line anywhere else."""

from __future__ import annotations

import dataclasses
import json
from io import StringIO

import pytest
from rich.console import Console

from auditline.alerting.tail import line, printer, styled
from auditline.alerting.view import AlertView
from auditline.cli import build_parser
from tests.unit.alerting.samples import drift, quality, violation

PLAIN = (
    "2026-03-02T09:04:00+00:00  ! high     violation RES-PIN deny: data pinned to DE reaches US "
    "(serving) | serving DE -> US ds:customers <- ds:customers-us <- model:churn:3 | evidence e-0"
)
RICH = (
    "2026-03-02T09:04:00+00:00  high     violation RES-PIN deny  data pinned to DE reaches US "
    "(serving)  serving DE -> US ds:customers <- ds:customers-us <- model:churn:3  evidence e-0"
)


class Terminal(StringIO):
    """Output that says it is a terminal, as sys.stdout does in a shell."""

    def isatty(self) -> bool:
        return True


def view(event: object) -> AlertView:
    found = AlertView.of(event)  # type: ignore[arg-type]
    assert found is not None
    return found


@pytest.fixture(autouse=True)
def colour_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


def rendered(alert: AlertView, width: int = 300) -> tuple[str, str]:
    """(text without styles, text with ANSI codes) of the rich line."""
    console = Console(file=StringIO(), force_terminal=True, width=width, record=True)
    console.print(styled(alert))
    return console.export_text(styles=False, clear=False), console.export_text(styles=True)


def test_the_rich_line_says_what_the_plain_line_says() -> None:
    text, ansi = rendered(view(violation()))
    assert text == RICH + "\n"
    assert "\x1b[31mhigh    \x1b[0m" in ansi  # high: red
    assert "\x1b[1mRES-PIN\x1b[0m" in ansi  # the rule stands out


@pytest.mark.parametrize(
    ("severity", "code"),
    [("critical", "\x1b[1;31m"), ("high", "\x1b[31m"), ("medium", "\x1b[33m"),
     ("low", "\x1b[2m"), ("info", "\x1b[2m")],
)  # fmt: skip
def test_severity_colours(severity: str, code: str) -> None:
    alert = dataclasses.replace(view(violation()), severity=severity)
    _, ansi = rendered(alert)
    assert f"{code}{severity:<8}\x1b[0m" in ansi


def test_a_drift_alert_and_many_evidence_ids() -> None:
    alert = dataclasses.replace(view(drift()), evidence=("a", "b", "c", "d"))
    text, _ = rendered(alert)
    assert "medium   drift psi opened  drift opened on tenure: psi 0.31 (threshold 0.2)" in text
    assert text.endswith("evidence a, b, c ...\n")


def test_a_data_quality_alert_is_one_line_plain_and_json() -> None:
    alert = view(quality())
    assert line(alert) == (
        "2026-03-02T09:04:00+00:00  ! high     quality missing opened: data quality opened on "
        "tenure: missing values 30.00% (threshold 21.00%, training 1.00%) | model churn:3, "
        "window 2026-03-02T09:04:00+00:00 to 2026-03-02T09:04:00+00:00 | evidence run-42"
    )
    out = StringIO()
    printer(out, as_json=True)(alert)
    document = json.loads(out.getvalue())
    assert (document["kind"], document["rule"], document["details"]["check"]) == (
        "quality", "missing", "missing",
    )  # fmt: skip


def test_control_characters_in_an_alert_cannot_drive_the_terminal() -> None:
    alert = dataclasses.replace(view(violation()), title="pwned\x1b[2J\x07\r")
    text, ansi = rendered(alert)
    assert "\x1b[2J" not in ansi and "\x07" not in ansi and "\r" not in ansi
    assert "pwned\ufffd[2J\ufffd\ufffd" in text


def test_on_a_terminal_each_alert_is_one_coloured_line_written_at_once() -> None:
    out = Terminal()
    show = printer(out)
    alert = view(violation())
    show(alert)
    assert "\x1b[" in out.getvalue()
    show(alert)  # longer than the 80 columns of a terminal of unknown width: never broken up
    assert out.getvalue().count("\n") == 2


def test_no_color_keeps_the_layout_without_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = Terminal()
    printer(out)(view(violation()))
    assert "\x1b[3" not in out.getvalue()  # no colour codes
    assert RICH in out.getvalue().replace("\x1b[1m", "").replace("\x1b[2m", "").replace(
        "\x1b[0m", ""
    )


def test_not_a_terminal_or_plain_gives_the_plain_line_unchanged() -> None:
    alert = view(violation())
    assert line(alert) == PLAIN
    for out, plain in ((StringIO(), False), (Terminal(), True)):
        printer(out, plain=plain)(alert)
        assert out.getvalue() == PLAIN + "\n"


def test_json_wins_everywhere() -> None:
    out = Terminal()
    printer(out, as_json=True)(view(violation()))
    assert json.loads(out.getvalue())["alert_id"] == "v-0"


def test_plain_flag() -> None:
    args = build_parser().parse_args(["alerts", "tail", "--plain"])
    assert args.plain and not args.json
    with pytest.raises(SystemExit):
        build_parser().parse_args(["alerts", "tail", "--plain", "--json"])
