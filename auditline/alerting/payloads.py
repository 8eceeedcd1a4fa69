"""What a webhook receives: the body in its format, and the headers that make it verifiable.

Every request carries ``Idempotency-Key: <alert id>`` (a retried or re-read alert has the same
one) and, with a secret, ``Auditline-Signature: t=<unix seconds>, v1=<hex HMAC-SHA256 over
"<t>." + body>`` so that a receiver can check who sent it and refuse a replay
(``verify_signature``, the code docs/alerts.md gives receivers). The header is not signed; the
alert id inside the signed body (json, cloudevents) is what to deduplicate on. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

from auditline.alerting.view import AlertView

SIGNATURE_HEADER = "Auditline-Signature"
TOLERANCE_S = 300


def body(alert: AlertView, form: str, subscription: str, source: str) -> tuple[bytes, str]:
    """The request body and its content type, for ``form`` json | slack | cloudevents."""
    if form == "slack":
        text = f"*[{alert.severity}] {alert.kind} {alert.rule}*: {alert.title}\n{alert.where}"
        document: dict[str, object] = {"text": text}
        kind = "application/json"
    elif form == "cloudevents":
        document = {
            "specversion": "1.0", "id": alert.alert_id, "source": source,
            "type": f"io.auditline.alert.{alert.kind}", "subject": alert.rule,
            "time": alert.time, "datacontenttype": "application/json",
            "data": alert.to_json(),
        }  # fmt: skip
        kind = "application/cloudevents+json"
    else:
        document = {"subscription": subscription, "alert": alert.to_json()}
        kind = "application/json"
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode(), kind


def headers(
    alert: AlertView, payload: bytes, secret: bytes | None, subscription: str, now: float
) -> dict[str, str]:
    found = {"Idempotency-Key": alert.alert_id, "Auditline-Subscription": subscription}
    if secret is not None:
        found[SIGNATURE_HEADER] = sign(secret, payload, int(now))
    return found


def redacted(url: str) -> str:
    """scheme://host[:port]: webhook URLs often carry their credential in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def sign(secret: bytes, payload: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# --- receivers: the verification docs/alerts.md shows (stdlib only; keep the two in step) ---
def verify_signature(
    secret: bytes, header: str, payload: bytes, tolerance_s: int = TOLERANCE_S,
    now: float | None = None,
) -> bool:  # fmt: skip
    """True when ``header`` signs ``payload`` with ``secret`` within ``tolerance_s`` of now."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False  # stale or from the future: a replay
    expected = hmac.new(secret, f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), parts.get("v1", "").encode())
