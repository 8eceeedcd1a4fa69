"""Webhook delivery of one subscription: at least once, in order per partition, never blocking
another subscription.

Loop: poll alerts (the subscription's own consumer group), POST each one that passes the
filters. A POST is retried on connection errors, timeouts, 408, 425, 429 and 5xx with
exponential backoff and jitter (``backoff_s`` doubling up to ``max_backoff_s``); after
``retries`` it goes to ``<prefix>.alerts.deadletter`` with the reason, and the subscription goes
on. Other 4xx and 3xx answers are final (redirects are not followed: a redirected POST arrives
as a GET without its body): dead letter at once. **Commit point**: after each polled batch (up
to 100 alerts) every alert of which got a 2xx or an acknowledged dead letter, and also right
after any alert that needed retries (so a long outage keeps its progress); a crash or a stop
repeats what was in flight since, never loses an alert; receivers deduplicate on the alert id.
A consumer failure (a rebalance during a commit, the broker away) restarts the subscription from
its last commit. A per-subscription rate cap spaces requests. The consumer-lag gauge counts from
the last commit (not the read position, which runs ahead of the batch being delivered); it is
updated after each batch and before each retry, so it grows while a receiver is failing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from confluent_kafka import KafkaException, Producer

from auditline.alerting import payloads
from auditline.alerting.metrics import AlertMetrics
from auditline.alerting.source import AlertSource
from auditline.alerting.subscriptions import Subscription, Webhook
from auditline.alerting.view import AlertView
from auditline.errors import UnavailableError
from auditline.settings import AuditlineSettings
from auditline.topics import ensure_topics, with_logger

log = logging.getLogger(__name__)
RETRYABLE = frozenset({408, 425, 429})
RESTART_S = 5.0


@dataclass
class WebhookStats:
    delivered: int = 0
    retries: int = 0
    dead_lettered: int = 0
    skipped: int = 0  # did not pass the filters
    last_error: str = ""


@dataclass
class Pacer:
    """At most ``per_second`` requests a second (a token every 1/rate seconds)."""

    per_second: float
    _next: float = field(default=0.0)

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(now, self._next) + 1.0 / self.per_second


class WebhookDelivery:
    def __init__(
        self,
        subscription: Subscription,
        settings: AuditlineSettings,
        session: aiohttp.ClientSession,
        metrics: AlertMetrics | None = None,
    ) -> None:
        assert subscription.webhook is not None
        self.metrics = metrics or AlertMetrics()
        self.subscription = subscription
        self.hook: Webhook = subscription.webhook
        self.settings = settings
        self.session = session
        self.secret = self.hook.secret()
        self.pacer = Pacer(self.hook.max_per_second)
        self.stats = WebhookStats()
        self.dead_letter_topic = f"{settings.topic_prefix}.alerts.deadletter"
        self.source = f"auditline/{settings.topic_prefix}"
        self._producer: Producer | None = None
        self._alerts: AlertSource | None = None  # while consuming: the lag gauge reads it
        self.healthy = False  # consuming (readiness)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until stopped; a failure of the consumer (a rebalance during a commit, the
        broker away) restarts it from the last commit after a pause, never silently ends it."""
        while not stop.is_set():
            try:
                await self._consume(stop)
            except (UnavailableError, KafkaException) as exc:
                self.stats.last_error = str(exc)
                self.healthy = False
                log.warning("subscription %s: %s; restarting in %s s", self.subscription.name,
                            exc, RESTART_S)  # fmt: skip
                await _stopped(stop, RESTART_S)
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 10)

    async def _consume(self, stop: asyncio.Event) -> None:
        group = self.subscription.group(self.settings.topic_prefix)
        alerts = await asyncio.to_thread(
            AlertSource.subscription, self.settings, group, self.subscription.start
        )
        self.healthy, self._alerts = True, alerts
        try:
            while not stop.is_set():
                batch = await asyncio.to_thread(alerts.poll, 0.5, 100)
                for alert in batch:
                    slow = (self.stats.retries, self.stats.dead_lettered)
                    if not await self._handle(alert, stop):
                        return  # stopped: nothing after the last commit is committed
                    if slow != (self.stats.retries, self.stats.dead_lettered):
                        alerts.commit([alert], wait=False)  # after a slow one: keep progress
                if batch:
                    await asyncio.to_thread(alerts.commit, batch[-1:])  # the commit point
                self._observe_lag()
        finally:
            self._alerts = None
            await asyncio.to_thread(alerts.close)

    def _observe_lag(self) -> None:
        """Alerts not yet committed, per partition (cached watermarks: no broker request)."""
        if self._alerts is None:  # ``alerts test``, or between restarts
            return
        name = self.subscription.name
        for (topic, partition), lag in self._alerts.lag().items():
            self.metrics.consumer_lag.labels(name, topic, str(partition)).set(lag)

    async def _handle(self, alert: AlertView, stop: asyncio.Event) -> bool:
        """Deliver (or dead-letter) one alert; False only when stopped first."""
        name = self.subscription.name
        self.metrics.consumed.labels(name, alert.kind).inc()
        if not self.subscription.filters.matches(alert):
            self.stats.skipped += 1
            return True
        self.metrics.matched.labels(name, alert.rule, alert.severity).inc()
        return await self.deliver(alert, stop)

    async def deliver(self, alert: AlertView, stop: asyncio.Event | None = None) -> bool:
        """POST until a 2xx or the retries run out (then dead letter); False only if stopped."""
        data, content_type = payloads.body(
            alert, self.hook.format, self.subscription.name, self.source
        )
        for attempt in range(self.hook.retries + 1):
            await self.pacer.wait()
            status, reason = await self._post(alert, data, content_type)
            if status is not None and 200 <= status < 300:
                self.stats.delivered += 1
                self._delivered(alert)
                return True
            self.stats.last_error = reason
            final = status is not None and 300 <= status < 500 and status not in RETRYABLE
            if final or attempt == self.hook.retries:
                break
            self.stats.retries += 1
            self._observe_lag()  # the alerts held back by this one show meanwhile
            delay = min(self.hook.max_backoff_s, self.hook.backoff_s * 2**attempt)
            if await _stopped(stop, delay * random.uniform(0.5, 1.0)):
                return False
        await self._dead_letter(alert, data, self.stats.last_error)
        return True

    async def send_once(self, alert: AlertView) -> tuple[bool, str]:
        """One POST of ``alert`` (``auditline alerts test``): (a 2xx, the reason if not)."""
        data, content_type = payloads.body(
            alert, self.hook.format, self.subscription.name, self.source
        )
        status, reason = await self._post(alert, data, content_type)
        return status is not None and 200 <= status < 300, reason

    def _delivered(self, alert: AlertView) -> None:
        name = self.subscription.name
        self.metrics.deliveries.labels(name, "delivered").inc()
        try:
            raised = datetime.fromisoformat(alert.time).timestamp()
        except ValueError:
            return
        self.metrics.delivery_lag.labels(name).observe(max(0.0, time.time() - raised))

    async def _post(
        self, alert: AlertView, data: bytes, content_type: str
    ) -> tuple[int | None, str]:
        heads = payloads.headers(alert, data, self.secret, self.subscription.name, time.time())
        heads["Content-Type"] = content_type
        name, started = self.subscription.name, time.monotonic()
        try:
            async with self.session.post(
                self.hook.url, data=data, headers=heads, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.hook.timeout_s),
            ) as response:  # fmt: skip
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.metrics.attempts.labels(name, "error").inc()
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            self.metrics.request_seconds.labels(name).observe(time.monotonic() - started)
        self.metrics.attempts.labels(name, f"{status // 100}xx").inc()
        if 300 <= status < 400:  # a redirected POST would arrive as a GET without its body
            return status, f"HTTP {status}: the receiver redirects; set the url to the final one"
        return status, f"HTTP {status}"

    async def _dead_letter(self, alert: AlertView, data: bytes, reason: str) -> None:
        """Produce to the dead-letter topic and wait for the broker's acknowledgement: only then
        may the alert's offset be committed (else ``UnavailableError``, nothing committed)."""
        log.warning("subscription %s: alert %s dead-lettered after %s", self.subscription.name,
                    alert.alert_id, reason)  # fmt: skip
        failures = await asyncio.to_thread(self._produce_dead_letter, alert, data, reason)
        if failures:
            raise UnavailableError(f"the dead letter of {alert.alert_id} was refused: {failures}")
        self.stats.dead_lettered += 1
        self.metrics.deliveries.labels(self.subscription.name, "dead_lettered").inc()

    def _produce_dead_letter(self, alert: AlertView, data: bytes, reason: str) -> str:
        if self._producer is None:
            conf = self.settings.kafka.client_conf()
            ensure_topics(conf, [self.dead_letter_topic])
            self._producer = Producer(
                {**with_logger(conf), "acks": "all", "enable.idempotence": True}
            )
        errors: list[str] = []
        self._producer.produce(
            self.dead_letter_topic, data, alert.alert_id.encode(),
            headers={"reason": reason, "subscription": self.subscription.name,
                     "url": payloads.redacted(self.hook.url), "alert_id": alert.alert_id},
            on_delivery=lambda err, _: errors.append(str(err)) if err is not None else None,
        )  # fmt: skip
        if self._producer.flush(30):
            return "not acknowledged within 30 s"
        return "; ".join(errors)


async def _stopped(stop: asyncio.Event | None, delay: float) -> bool:
    """Sleep ``delay`` unless ``stop`` is set first; True when stopped."""
    if stop is None:
        await asyncio.sleep(delay)
        return False
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        return False
    return True
