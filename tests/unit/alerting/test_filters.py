"""Subscriptions: which alerts each filter lets through, and file errors with file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditline.alerting.subscriptions import Filters, load_subscriptions, parse_duration
from auditline.alerting.view import AlertView
from auditline.errors import ConfigError
from tests.unit.alerting.samples import drift, integrity, quality, violation


def view(event: object) -> AlertView:
    found = AlertView.of(event)  # type: ignore[arg-type]
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"v-0", "d-1", "q-1", "i-1"}),
        ({"kinds": ["violation"]}, {"v-0"}),
        ({"kinds": ["quality"]}, {"q-1"}),
        ({"min_severity": "high"}, {"v-0", "q-1", "i-1"}),
        ({"rules": ["RES-PIN", "psi"]}, {"v-0", "d-1"}),
        ({"rules": ["missing"]}, {"q-1"}),
        ({"jurisdictions": ["US"]}, {"v-0"}),
        ({"jurisdictions": ["FR"]}, set()),
        ({"models": ["churn"]}, {"v-0", "d-1", "q-1"}),
        ({"models": ["churn:3"]}, {"v-0", "d-1", "q-1"}),
        ({"models": ["churn:4"]}, set()),
        ({"assets": ["ds:customers-us"]}, {"v-0"}),
        ({"services": ["billing"]}, {"i-1"}),
        ({"states": ["opened"]}, {"d-1", "q-1"}),
        ({"kinds": ["drift"], "states": ["closed"]}, set()),
    ],
)
def test_filters(filters: dict[str, object], expected: set[str]) -> None:
    alerts = [view(violation()), view(drift()), view(quality()), view(integrity())]
    chosen = Filters.model_validate(filters)
    assert {a.alert_id for a in alerts if chosen.matches(a)} == expected


def test_views_say_what_and_where() -> None:
    v = view(violation())
    assert (v.kind, v.severity, v.rule, v.state) == ("violation", "high", "RES-PIN", "deny")
    assert v.jurisdictions == {"DE", "US"} and v.models == {"churn:3"}
    assert v.assets == {"ds:customers", "ds:customers-us"}
    assert v.where == "serving DE -> US ds:customers <- ds:customers-us <- model:churn:3"
    assert v.evidence == ("e-0",)
    d = view(drift())
    assert d.title == "drift opened on tenure: psi 0.31 (threshold 0.2)"
    assert view(integrity()).where == "stream billing/pod-1/movements at sequence 6"
    q = view(quality())
    assert (q.kind, q.severity, q.rule, q.state) == ("quality", "high", "missing", "opened")
    assert q.title == (
        "data quality opened on tenure: missing values 30.00% (threshold 21.00%, training 1.00%)"
    )
    assert q.where == "model churn:3, window 2026-03-02T09:04:00+00:00 to 2026-03-02T09:04:00+00:00"
    assert q.models == {"churn:3"} and q.evidence == ("run-42",)
    assert q.details["affected"] == 150 and q.details["test"] == (
        "missing in 30.00% of the window's values against 1.00% in training "
        "(one-sided two-proportion test, p = 1e-30)"
    )
    assert q.to_json()["kind"] == "quality"


def test_a_bad_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "subs.yaml"
    path.write_text(
        "subscriptions:\n"
        "  - name: pager\n"
        "    filters:\n"
        "      min_severity: urgent\n"
        "    webhook: {url: 'https://x.example'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"subs.yaml:4: subscriptions.0.filters.min_severity"):
        load_subscriptions(path)
    path.write_text("subscriptions:\n  - name: a\n    filters: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"subs.yaml:2: subscriptions.0: .*exactly one delivery"):
        load_subscriptions(path)
    path.write_text(
        "subscriptions:\n  - {name: a, sse: {}}\n  - {name: a, sse: {}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="names must be unique: a"):
        load_subscriptions(path)
    path.write_text("subscriptions: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_subscriptions(path)


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("2h") == 7200
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration("soon")
