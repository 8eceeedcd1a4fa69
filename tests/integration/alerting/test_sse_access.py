"""SSE access on the real broker, `auditline alerts serve` as a process: the bearer token (401
without it or with a wrong one, 200 with it, in the header or the query), the per-subscription
client limit (503 with Retry-After past it, a slot freed when a client hangs up), the health and
metrics endpoints open without a token, the warning for a tokenless stream on 0.0.0.0, and a
stop that ends open streams rather than waiting for their clients."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_alerts import ROOT, emit, get, sample, scrape, until
from tests.kafka_helpers import free_port

pytestmark = pytest.mark.integration
TOKEN = "sse-token-for-the-test"
EVENTS = "/subscriptions/console/events?from=beginning"


def serve_on(host: str, env: dict[str, str], subs: Path, port: int) -> subprocess.Popen[str]:
    """`alerts serve` on ``host``; returns once it printed its ready line (``.seen``: the lines
    before it, warnings included)."""
    command = [sys.executable, "-m", "auditline.cli", "alerts", "serve", str(subs),
               "--host", host, "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen: list[str] = []
    while not any("alerts: ready" in line for line in seen):
        line = process.stdout.readline()
        assert line, "".join(seen) + "(serve exited before it was ready)"
        seen.append(line)
    process.seen = seen  # type: ignore[attr-defined]
    return process


def request(port: int, path: str, **headers: str) -> tuple[http.client.HTTPConnection, Any]:
    """The response to a GET, its body not read (a stream stays open until ``conn.close()``)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers)
    return conn, conn.getresponse()


def refused(port: int, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    conn, response = request(port, path, **headers)
    try:
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


def first_alert(response: Any) -> str:
    while True:
        line = response.fp.readline().decode()
        assert line, "the stream ended"
        if line.startswith("data: "):
            return str(json.loads(line[6:])["alert_id"])


def test_tokens_and_client_limits(setup: dict[str, Any]) -> None:
    port = free_port()
    subs = setup["tmp"] / "subs.yaml"
    subs.write_text(
        "subscriptions:\n"
        "  - name: console\n    sse: {token_env: CONSOLE_TOKEN, max_clients: 1}\n"
        "  - name: open\n    sse: {}\n",
        encoding="utf-8",
    )
    emit(setup["bootstrap"], setup["prefix"], setup["tmp"] / "spool", range(0, 4))
    service = serve_on("0.0.0.0", setup["env"] | {"CONSOLE_TOKEN": TOKEN}, subs, port)
    try:
        warnings = "".join(service.seen)  # type: ignore[attr-defined]
        assert "subscription open: SSE served on 0.0.0.0 without a token" in warnings
        assert "subscription console" not in warnings

        status, body, headers = refused(port, EVENTS)
        assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="auditline"')
        assert "needs a token: send Authorization: Bearer <token>" in body
        for wrong in ({"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
            assert refused(port, EVENTS, **wrong)[0] == 401
        assert refused(port, f"{EVENTS}&access_token=nope")[0] == 401

        conn, stream = request(port, EVENTS, Authorization=f"Bearer {TOKEN}")
        assert stream.status == 200 and first_alert(stream) == "v-0"
        for path in ("/healthz", "/readyz", "/metrics"):  # never behind the token
            until(lambda p=path: get(port, p)[0] == 200, 30, lambda p=path: str(get(port, p)))
        assert sample(scrape(port), "auditline_sse_clients", subscription="console") == 1

        status, body, headers = refused(port, f"{EVENTS}&access_token={TOKEN}")
        assert (status, headers["Retry-After"]) == (503, "5")
        assert body == (
            "subscription console has its limit of 1 SSE streams open: retry later, or raise its "
            "sse.max_clients in the subscriptions file\n"
        )
        other, response = request(port, "/subscriptions/open/events")
        assert response.status == 200  # a limit of its own
        other.close()

        conn.close()  # hanging up frees the slot within a poll, not at the next keepalive
        stream = reopen(port, 10)
    finally:
        service.send_signal(signal.SIGTERM)  # with a stream open: ends it, then exits
        output, _ = service.communicate(timeout=15)
    assert service.returncode == 0, output
    rest = stream.fp.read()  # the raw chunked body up to the connection's end
    assert rest.endswith(b"0\r\n\r\n"), rest  # the stream was ended (an EventSource reconnects)


def reopen(port: int, seconds: float) -> Any:
    """A stream of ``console`` open at its first alert, once its one slot is free again."""
    deadline = time.monotonic() + seconds
    while True:
        conn, response = request(port, f"{EVENTS}&access_token={TOKEN}")
        if response.status == 200:
            assert first_alert(response) == "v-0"
            return response
        conn.close()
        assert response.status == 503 and time.monotonic() < deadline, "the slot is still taken"
        time.sleep(0.2)
