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
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from auditline.errors import AuditlineError, OpenLineageError
from auditline.openlineage.ingest import Ingestor, Outcome, array_items
from auditline.settings import OpenLineageSettings

log = logging.getLogger(__name__)
PATH = "/api/v1/lineage"
BATCH = 200
MAX_PENDING = 5_000
"""Events waiting to be ingested; more are answered 503 at once (back-pressure, not memory)."""


class Busy(Exception):
    """Too many events wait: the request is refused before it is queued."""


class Batcher:
    """Collects the events of concurrent requests and ingests them a batch at a time."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self.queue: asyncio.Queue[tuple[list[bytes], asyncio.Future[list[Outcome]]]] = (
            asyncio.Queue()
        )
        self.pending = 0

    async def submit(self, raws: list[bytes]) -> list[Outcome]:
        if self.pending + len(raws) > MAX_PENDING:
            raise Busy(f"{self.pending} events wait to be recorded")
        done: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self.pending += len(raws)
        try:
            await self.queue.put((raws, done))
            return await done
        finally:
            self.pending -= len(raws)

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
            except Exception:  # noqa: BLE001 - then each request alone: only its own fails
                for request, done in waiting:
                    await self._alone(loop, request, done)
                continue
            start = 0
            for request, done in waiting:
                if not done.done():
                    done.set_result(outcomes[start : start + len(request)])
                start += len(request)

    async def _alone(
        self,
        loop: asyncio.AbstractEventLoop,
        request: list[bytes],
        done: asyncio.Future[list[Outcome]],
    ) -> None:
        try:
            outcomes = await loop.run_in_executor(None, self.ingestor.ingest, request)
        except Exception as exc:  # noqa: BLE001 - the request's answer says it
            if not done.done():
                done.set_exception(exc)
        else:
            if not done.done():
                done.set_result(outcomes)


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
        body = await _body(request, settings.max_event_bytes)
        if isinstance(body, web.Response):
            return body
        array = body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")
        outcomes = await _recorded(batcher, body, array)
        if isinstance(outcomes, web.Response):
            return outcomes
        return _answer(outcomes, single=not array)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app.cleanup_ctx.append(batching)
    app.router.add_post(PATH, lineage)
    app.router.add_get("/healthz", health)
    return app


async def _body(request: web.Request, limit: int) -> bytes | web.Response:
    """The request's body (inflated), or the answer that says why it cannot be read."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"the body exceeds {limit} bytes")
    except Exception as exc:  # noqa: BLE001 - a corrupt gzip body, a broken upload
        return _error(400, f"the body could not be read: {exc}")
    if not body.strip():
        return _error(400, "the body is empty: post one OpenLineage event as JSON")
    return body


async def _recorded(batcher: Batcher, body: bytes, array: bool) -> list[Outcome] | web.Response:
    """The outcomes of the body's events, or the answer that says why none was recorded."""
    try:
        return await batcher.submit(array_items(body) if array else [body])
    except OpenLineageError as exc:
        return _error(400, str(exc))
    except Busy as exc:
        return _error(503, f"too busy: {exc}; retry later")
    except AuditlineError as exc:
        log.error("recording OpenLineage events failed: %s", exc)
        return _error(503, f"the events could not be recorded: {exc}; retry later")
    except Exception as exc:
        log.exception("recording OpenLineage events failed")
        return _error(500, f"the events could not be recorded: {type(exc).__name__}")


def _authorised(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), token.encode()
    )


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
    port = runner.addresses[0][1] if runner.addresses else settings.port  # the one port 0 chose
    print(f"openlineage: ready on http://{settings.host}:{port}{PATH}", flush=True)
    await stop.wait()
    await runner.cleanup()
