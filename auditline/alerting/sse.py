"""Server-Sent Events: ``GET /subscriptions/NAME/events`` streams the subscription's alerts.

Each client reads the alert topics on its own (no consumer group): from now on, or from
``?from=beginning``, or, reconnecting, from the ``Last-Event-ID`` header its ``EventSource``
sends (or ``?last_event_id=``). Every event's id is a **cursor**: the next offset of every alert
partition, resolved to numbers when the stream opens, so a client that reconnects with the last
id it saw misses nothing and gets nothing twice (alerts that do not pass the filters are read
again and dropped again). ``curl -N`` and a browser ``EventSource`` can follow it; a comment line
every 15 s keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping

from aiohttp import web
from confluent_kafka import TopicPartition

from auditline.alerting.metrics import AlertMetrics
from auditline.alerting.source import AlertSource
from auditline.alerting.subscriptions import SubscriptionsFile
from auditline.alerting.view import AlertView
from auditline.errors import ConfigError
from auditline.settings import AuditlineSettings

KEEPALIVE_S = 15.0
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


def add_routes(
    app: web.Application,
    settings: AuditlineSettings,
    subscriptions: SubscriptionsFile,
    metrics: AlertMetrics,
) -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        found = [s for s in subscriptions.subscriptions if s.name == name and s.sse]
        if not found:
            raise web.HTTPNotFound(text=f"no SSE subscription named {name}\n")
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        start = "beginning" if request.query.get("from") == "beginning" else "end"
        try:
            source, cursor = await asyncio.to_thread(_open, settings, last, start)
        except ConfigError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        clients = metrics.sse_clients.labels(name)
        clients.inc()
        try:
            return await _stream(request, source, cursor, found[0].filters.matches)
        finally:
            clients.dec()
            await asyncio.to_thread(source.close)

    app.router.add_get("/subscriptions/{name}/events", events)


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
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                 "X-Accel-Buffering": "no"}
    )  # fmt: skip
    await response.prepare(request)
    await response.write(b": auditline alerts\n\n")
    last_write = time.monotonic()
    while True:
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
