"""``auditline alerts serve``: every webhook and SSE subscription of a file, in one process.

Each webhook subscription is an asyncio task with its own consumer group (a receiver that is
down only holds back its own subscription); SSE streams and ``/healthz`` are served by one
aiohttp application (tokens and client limits: ``sse.py``). SIGTERM/SIGINT stop it: deliveries
in flight are not committed, so they are sent again on the next start (receivers deduplicate on
``Idempotency-Key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import aiohttp
from aiohttp import web

from auditline.alerting.metrics import AlertMetrics
from auditline.alerting.sse import AccessLog, add_routes, exposed
from auditline.alerting.subscriptions import SubscriptionsFile
from auditline.alerting.webhook import WebhookDelivery
from auditline.errors import UnavailableError
from auditline.settings import AuditlineSettings
from auditline.topics import require_broker

log = logging.getLogger(__name__)
PROBE_S = 5.0


async def serve(
    settings: AuditlineSettings, subscriptions: SubscriptionsFile, host: str, port: int
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    metrics = AlertMetrics()
    health = Health(settings, metrics)
    app = web.Application()
    add_routes(app, settings, subscriptions, metrics, stop)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.scrape)
    for name in exposed(subscriptions, host):
        log.warning("subscription %s: SSE served on %s without a token: whoever reaches that "
                    "address reads its alerts; set sse.token_env", name, host)  # fmt: skip
    runner = web.AppRunner(app, access_log_class=AccessLog)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    async with aiohttp.ClientSession() as session:
        hooks = [
            WebhookDelivery(s, settings, session, metrics)
            for s in subscriptions.subscriptions
            if s.webhook
        ]
        for hook in hooks:
            if hook.secret is None:
                log.warning("subscription %s: webhook requests are not signed (no secret_env)",
                            hook.subscription.name)  # fmt: skip
        health.hooks = hooks
        tasks = [asyncio.create_task(h.run(stop), name=h.subscription.name) for h in hooks]
        probe = asyncio.create_task(health.probe(stop))
        sse = [s.name for s in subscriptions.subscriptions if s.sse]
        print(
            f"alerts: ready on http://{host}:{port}: {len(hooks)} webhook subscription(s)"
            f"{', SSE ' + ', '.join(sse) if sse else ''}; topics {settings.topic_prefix}.alerts.*",
            flush=True,
        )
        await _until_stopped(stop, tasks)
        await probe
    await runner.cleanup()


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Serve until the stop signal; a subscription that fails is logged, the others go on."""
    for task in tasks:
        task.add_done_callback(_log_failure)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("subscription %s stopped: %s", task.get_name(), task.exception())


async def _health(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


class Health:
    """``/readyz``: the broker answered the last probe (every ``PROBE_S``); ``/metrics``."""

    def __init__(self, settings: AuditlineSettings, metrics: AlertMetrics) -> None:
        self.conf = settings.kafka.client_conf()
        self.metrics = metrics
        self.ready = False
        self.reason = "starting"
        self.hooks: list[WebhookDelivery] = []

    async def probe(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(require_broker, self.conf, PROBE_S)
            except UnavailableError as exc:
                self.ready, self.reason = False, str(exc)
            else:
                self.ready, self.reason = True, "ok"
            self.metrics.ready.set(1 if self.ready else 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROBE_S)

    async def readyz(self, _: web.Request) -> web.Response:
        """Ready: the broker answers and every webhook subscription is consuming."""
        waiting = [h.subscription.name for h in self.hooks if not h.healthy]
        if self.ready and waiting:
            return web.Response(status=503, text=f"not consuming: {', '.join(waiting)}\n")
        return web.Response(status=200 if self.ready else 503, text=f"{self.reason}\n")

    async def scrape(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": self.metrics.content_type}
        )
