"""The consumer-lag gauge of a webhook subscription counts from its commits, on the real broker.

The webhook reads a batch, then retries a failing receiver on its first alert: its read position
is past the whole batch already, yet nothing of it is delivered. The gauge must say so (every
alert of the batch), and fall to 0 once the receiver takes them.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.integration.test_alerts import Receiver, emit, sample, scrape, serve, until
from tests.kafka_helpers import free_port

pytestmark = pytest.mark.integration


def lag(port: int) -> float:
    return sample(scrape(port), "auditline_alerts_consumer_lag", subscription="pager")


def test_the_lag_gauge_counts_alerts_held_back_by_a_failing_receiver(
    setup: dict[str, Any],
) -> None:
    receiver, port = Receiver(free_port()), free_port()
    receiver.up()
    receiver.mode = "fail"
    subs = setup["tmp"] / "subs.yaml"
    subs.write_text(
        "subscriptions:\n  - name: pager\n    start: earliest\n    filters: {min_severity: high}\n"
        f"    webhook: {{url: 'http://127.0.0.1:{receiver.port}/hook', retries: 1000,\n"
        "              backoff_s: 0.1, max_backoff_s: 0.2}\n",
        encoding="utf-8",
    )
    emit(setup["bootstrap"], setup["prefix"], setup["tmp"] / "spool", range(0, 10))
    service = serve(setup["env"], subs, port)
    try:
        until(lambda: receiver.failed >= 3, 30, lambda: "no request reached the receiver")
        # one partition, ten alerts read in one batch, the first still failing: all ten wait
        until(lambda: lag(port) == 10, 15, lambda: f"consumer lag {lag(port)} while failing")
        assert receiver.requests == []
        receiver.mode = "ok"
        expected = [f"v-{n}" for n in range(0, 10, 2)]
        until(lambda: receiver.ids() == expected, 30, lambda: f"got {receiver.ids()}")
        until(lambda: lag(port) == 0, 15, lambda: f"consumer lag {lag(port)} once delivered")
    finally:
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=30)
    assert service.returncode == 0, output
