"""``POST /api/v1/lineage``: the endpoint OpenLineage's HttpTransport posts to (Marquez's path).

A body is one OpenLineage event (what the transport sends) or a JSON array of them; gzip or
deflate bodies (``Content-Encoding``, the transport's ``compression``) are inflated by aiohttp.
Requests that arrive together are ingested together: one batch (up to ``BATCH`` events) at a
time, in a worker thread, so that many one-event requests share the spool writes and the event
loop keeps accepting while a batch is sealed.

Answers: 201 with the outcome (an array's: each item's) once the audit events are spooled; 400
with ``{"error": reason}`` when the event cannot be understood (an array with any rejected
item: 400 with each item's outcome, the accepted ones kept); 401 without the configured bearer
token; 413 over ``max_event_bytes``; 503 when the events could not be recorded (the spool
full). ``GET /healthz`` answers ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from auditline.errors import AuditlineError
from auditline.openlineage.ingest import Ingestor, Outcome
from auditline.settings import OpenLineageSettings

log = logging.getLogger(__name__)
PATH = "/api/v1/lineage"
BATCH = 200


class Batcher:
    """Collects the events of concurrent requests and ingests them a batch at a time."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self.queue: asyncio.Queue[tuple[list[bytes], asyncio.Future[list[Outcome]]]] = (
            asyncio.Queue()
        )

    async def submit(self, raws: list[bytes]) -> list[Outcome]:
        done: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        await self.queue.put((raws, done))
        return await done

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self.queue.get()]
            size = len(waiting[0][0])
            while size < BATCH and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
                size += len(waiting[-1][0])
            raws = [raw for request, _ in waiting for raw in request]
            try:
                outcomes = await loop.run_in_executor(None, self.ingestor.ingest, raws)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the failure
                for _, done in waiting:
                    if not done.done():
                        done.set_exception(exc)
                continue
            start = 0
            for request, done in waiting:
                if not done.done():
                    done.set_result(outcomes[start : start + len(request)])
                start += len(request)


def application(ingestor: Ingestor, settings: OpenLineageSettings) -> web.Application:
    """The app: the lineage endpoint and a health check."""
    token = settings.api_key.get_secret_value() if settings.api_key else None
    app = web.Application(client_max_size=settings.max_event_bytes)
    batcher = Batcher(ingestor)

    async def batching(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(batcher.run(), name="openlineage-batcher")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def lineage(request: web.Request) -> web.Response:
        if token is not None and not _authorised(request, token):
            return _error(401, "missing or wrong bearer token: send Authorization: Bearer <key>")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the body exceeds {settings.max_event_bytes} bytes")
        raws = _events(body)
        if isinstance(raws, str):
            return _error(400, raws)
        try:
            outcomes = await batcher.submit(raws)
        except AuditlineError as exc:
            log.error("ingesting failed: %s", exc)
            return _error(503, f"the events could not be recorded: {exc}; retry later")
        return _answer(outcomes, single=not body.lstrip().startswith(b"["))

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app.cleanup_ctx.append(batching)
    app.router.add_post(PATH, lineage)
    app.router.add_get("/healthz", health)
    return app


def _authorised(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _events(body: bytes) -> list[bytes] | str:
    """The body's events as raw bytes each: one event, or the items of a JSON array."""
    if not body.strip():
        return "the body is empty: post one OpenLineage event as JSON"
    if not body.lstrip().startswith(b"["):
        return [body]
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"the body is not JSON: {exc}"
    if not items:
        return "the array holds no events"
    return [json.dumps(item, separators=(",", ":")).encode() for item in items]


def _answer(outcomes: list[Outcome], *, single: bool) -> web.Response:
    if single:
        outcome = outcomes[0]
        return web.json_response(outcome.to_json(), status=201 if outcome.accepted else 400)
    status = 201 if all(o.accepted for o in outcomes) else 400
    return web.json_response([o.to_json() for o in outcomes], status=status)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"accepted": False, "error": reason}, status=status)


async def serve(ingestor: Ingestor, settings: OpenLineageSettings) -> None:
    """Serve until SIGINT/SIGTERM; prints one ready line with the URL."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(application(ingestor, settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = _bound_port(site) or settings.port
    print(f"openlineage: ready on http://{settings.host}:{port}{PATH}", flush=True)
    await stop.wait()
    await runner.cleanup()


def _bound_port(site: web.TCPSite) -> int | None:
    server: Any = site._server
    sockets = getattr(server, "sockets", None) or ()
    return int(sockets[0].getsockname()[1]) if sockets else None
