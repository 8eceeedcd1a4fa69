"""Webhook bodies and signatures; the verification code docs/alerts.md gives receivers is run
here as written (extracted from the doc)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from auditline.alerting import payloads
from auditline.alerting.sse import decode_cursor, encode_cursor
from auditline.alerting.view import AlertView
from auditline.errors import ConfigError
from tests.unit.alerting.samples import violation

ROOT = Path(__file__).resolve().parents[3]
SECRET = b"receiver-shared-secret"


def documented_verify() -> Any:
    text = (ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(import hashlib.*?)```", text, re.S)
    assert block, "docs/alerts.md lost its verification snippet"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    return namespace["verify_signature"]


def test_the_documented_receiver_code_accepts_only_genuine_fresh_requests() -> None:
    verify = documented_verify()
    alert = AlertView.of(violation())
    assert alert is not None
    body, _ = payloads.body(alert, "json", "pager", "auditline/t")
    header = payloads.headers(alert, body, SECRET, "pager", time.time())["Auditline-Signature"]
    assert verify(SECRET, header, body) is True
    assert payloads.verify_signature(SECRET, header, body) is True
    assert verify(b"another secret", header, body) is False
    assert verify(SECRET, header, body.replace(b"high", b"low")) is False
    stale = payloads.sign(SECRET, body, int(time.time()) - 600)
    assert verify(SECRET, stale, body) is False  # a replay ten minutes later
    assert verify(SECRET, "nonsense", body) is False
    now = int(time.time())
    assert verify(SECRET, f"t={now},v1=\u00e9", body) is False  # not hex, not even ASCII


@pytest.mark.parametrize("form", ["json", "slack", "cloudevents"])
def test_bodies(form: str) -> None:
    alert = AlertView.of(violation())
    assert alert is not None
    body, kind = payloads.body(alert, form, "pager", "auditline/t")
    document = json.loads(body)
    if form == "json":
        assert document["alert"]["alert_id"] == "v-0" and document["subscription"] == "pager"
    elif form == "slack":
        assert document["text"].startswith("*[high] violation RES-PIN*")
    else:
        assert kind == "application/cloudevents+json"
        assert (document["specversion"], document["id"]) == ("1.0", "v-0")
        assert document["type"] == "io.auditline.alert.violation"
        assert document["data"]["rule"] == "RES-PIN"


def test_sse_cursors_round_trip() -> None:
    topics = ["p.alerts.violations", "p.alerts.drift", "p.alerts.integrity"]
    cursor = {("p.alerts.violations", 0): 17, ("p.alerts.integrity", 2): 3}
    text = encode_cursor(cursor, topics)
    assert text == "0.0.17,2.2.3"
    assert decode_cursor(text, topics) == cursor
    with pytest.raises(ConfigError, match="not an auditline cursor"):
        decode_cursor("x.y", topics)


def test_the_alert_topics_include_data_quality_and_model_quality() -> None:
    from auditline.alerting.source import alert_topics
    from auditline.catalogue import Catalogue

    assert alert_topics(Catalogue("p")) == [
        "p.alerts.violations", "p.alerts.drift", "p.alerts.quality", "p.alerts.integrity",
        "p.alerts.performance",
    ]  # fmt: skip
