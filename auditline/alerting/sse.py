"""Server-Sent Events: ``GET /subscriptions/NAME/events`` streams the subscription's alerts.

Each client reads the alert topics on its own (no consumer group): from now on, or from
``?from=beginning``, or, reconnecting, from the ``Last-Event-ID`` header its ``EventSource``
sends (or ``?last_event_id=``). Every event's id is a **cursor**: the next offset of every alert
partition, resolved to numbers when the stream opens, so a client that reconnects with the last
id it saw misses nothing and gets nothing twice (alerts that do not pass the filters are read
again and dropped again). ``curl -N`` and a browser ``EventSource`` can follow it; a comment line
every 15 s keeps proxies from closing an idle stream.

**Access**: with ``sse.token_env`` set, a request must carry that token as
``Authorization: Bearer <token>`` or ``?access_token=<token>`` (an ``EventSource`` cannot send
headers), else 401; at most ``sse.max_clients`` streams of a subscription are open at once, more
get 503 with ``Retry-After``. Health and metrics endpoints are not behind the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from confluent_kafka import TopicPartition
from yarl import URL

from auditline.addresses import is_loopback
from auditline.alerting.metrics import AlertMetrics
from auditline.alerting.source import AlertSource
from auditline.alerting.subscriptions import Subscription, SubscriptionsFile
from auditline.alerting.view import AlertView
from auditline.errors import ConfigError
from auditline.settings import AuditlineSettings

KEEPALIVE_S = 15.0
RETRY_AFTER_S = 5
Cursor = dict[tuple[str, int], int]


def encode_cursor(cursor: Mapping[tuple[str, int], int], topics: list[str]) -> str:
    """``topic-index.partition.next-offset`` per partition, comma-separated (pure)."""
    numbered = sorted((topics.index(t), p, o) for (t, p), o in cursor.items())
    return ",".join(f"{i}.{p}.{o}" for i, p, o in numbered)


def decode_cursor(text: str, topics: list[str]) -> Cursor:
    cursor: Cursor = {}
    try:
        for item in filter(None, text.split(",")):
            index, partition, offset = (int(x) for x in item.split("."))
            if min(index, partition, offset) < 0:
                raise ValueError("negative")
            cursor[(topics[index], partition)] = offset
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"Last-Event-ID {text} is not an auditline cursor") from exc
    return cursor


def presented_token(authorization: str | None, access_token: str | None) -> str | None:
    """The token a request carries: ``Authorization: Bearer <token>``, else ``?access_token=``."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else access_token


@dataclass
class Gate:
    """Who may open one subscription's stream (its token), and how many at once."""

    subscription: Subscription
    token: bytes | None
    max_clients: int
    open: int = 0

    @classmethod
    def of(cls, subscription: Subscription) -> Gate:
        assert subscription.sse is not None
        try:
            token = subscription.sse.token()
        except ConfigError as exc:
            raise ConfigError(f"subscription {subscription.name}: {exc}") from exc
        return cls(subscription, token, subscription.sse.max_clients)

    def admit(self, request: web.Request) -> None:
        """Raise 401 unless the request carries the token (when there is one)."""
        if self.token is None:
            return
        given = presented_token(
            request.headers.get("Authorization"), request.query.get("access_token")
        )
        name = self.subscription.name
        if given is None:
            raise _unauthorized(f"subscription {name} needs a token: send Authorization: "
                                "Bearer <token>, or ?access_token=<token>", "")  # fmt: skip
        if not hmac.compare_digest(given.encode(), self.token):
            raise _unauthorized(f"the token sent for subscription {name} is wrong",
                                ', error="invalid_token"')  # fmt: skip

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One of the ``max_clients`` streams, for as long as the block runs; else 503."""
        if self.open >= self.max_clients:
            raise web.HTTPServiceUnavailable(
                text=f"subscription {self.subscription.name} has its limit of {self.max_clients} "
                "SSE streams open: retry later, or raise its sse.max_clients in the "
                "subscriptions file\n",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1


def _unauthorized(text: str, error: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text=f"{text}\n", headers={"WWW-Authenticate": f'Bearer realm="auditline"{error}'}
    )


def exposed(subscriptions: SubscriptionsFile, host: str) -> list[str]:
    """SSE subscriptions that whoever reaches ``host`` may read: no token, not loopback only."""
    if is_loopback(host):
        return []
    return [s.name for s in subscriptions.subscriptions if s.sse and s.sse.token_env is None]


class AccessLog(AbstractAccessLogger):
    """aiohttp's access log line, with the value of ``?access_token=`` left out."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.3fs', request.remote, request.method,
                         redacted_url(request.rel_url), response.status, time)  # fmt: skip


def redacted_url(url: URL) -> str:
    if "access_token" not in url.query:
        return str(url)
    return str(url.update_query(access_token="redacted"))


def add_routes(
    app: web.Application,
    settings: AuditlineSettings,
    subscriptions: SubscriptionsFile,
    metrics: AlertMetrics,
    stop: asyncio.Event,
) -> None:
    """``GET /subscriptions/NAME/events``; reads every SSE token now (``ConfigError`` if unset).
    Streams end when ``stop`` is set (clients reconnect with ``Last-Event-ID``)."""
    gates = {s.name: Gate.of(s) for s in subscriptions.subscriptions if s.sse}

    async def events(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        gate = gates.get(name)
        if gate is None:
            raise web.HTTPNotFound(text=f"no SSE subscription named {name}\n")
        gate.admit(request)
        with gate.slot():
            return await _respond(request, settings, gate.subscription, metrics, stop)

    app.router.add_get("/subscriptions/{name}/events", events)


async def _respond(
    request: web.Request,
    settings: AuditlineSettings,
    subscription: Subscription,
    metrics: AlertMetrics,
    stop: asyncio.Event,
) -> web.StreamResponse:
    last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    start = "beginning" if request.query.get("from") == "beginning" else "end"
    try:
        source, cursor = await asyncio.to_thread(_open, settings, last, start)
    except ConfigError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from exc
    clients = metrics.sse_clients.labels(subscription.name)
    clients.inc()
    try:
        return await _stream(request, source, cursor, subscription.filters.matches, stop)
    finally:
        clients.dec()
        await asyncio.to_thread(source.close)


def _open(settings: AuditlineSettings, last: str | None, start: str) -> tuple[AlertSource, Cursor]:
    source = AlertSource.reader(settings, start)
    try:
        positions = decode_cursor(last, source.topics) if last else _numbers(source, start)
    except ConfigError:
        source.close()
        raise
    source.resume(positions)  # the same consumer, at positions that are numbers
    return source, positions


def _numbers(source: AlertSource, start: str) -> Cursor:
    """The start position of every partition as a number (a cursor must never say "end")."""
    numbers: Cursor = {}
    for topic, partition in source.partitions():
        low, high = source.consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10
        )
        numbers[(topic, partition)] = low if start == "beginning" else high
    return numbers


async def _stream(
    request: web.Request,
    source: AlertSource,
    cursor: Cursor,
    wanted: Callable[[AlertView], bool],
    stop: asyncio.Event,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                 "X-Accel-Buffering": "no"}
    )  # fmt: skip
    await response.prepare(request)
    await response.write(b": auditline alerts\n\n")
    last_write = time.monotonic()
    while not stop.is_set() and request.transport and not request.transport.is_closing():
        batch: list[AlertView] = await asyncio.to_thread(source.poll, 0.5, 200)
        for alert in batch:
            assert alert.position is not None
            cursor[(alert.position.topic, alert.position.partition)] = alert.position.offset + 1
            if wanted(alert):
                data = json.dumps(alert.to_json(), separators=(",", ":"))
                event_id = encode_cursor(cursor, source.topics)
                await response.write(f"id: {event_id}\nevent: alert\ndata: {data}\n\n".encode())
                last_write = time.monotonic()
        if time.monotonic() - last_write >= KEEPALIVE_S:  # also finds a client that has gone
            await response.write(b": keepalive\n\n")
            last_write = time.monotonic()
    # stopping, or the client hung up: its slot is free now, not at the next keepalive write
    return response
