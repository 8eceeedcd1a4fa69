"""The console's web server: the single page, its static files and the read-only JSON API.

Every store read runs on one thread of its own (the store client is not shared across threads),
so the event loop only serves. Live alerts are Server-Sent Events read from the store every
``console.poll_ms``: each event's id is the cursor (ingestion time and event id of the last row
read), so a browser that reconnects with ``Last-Event-ID`` misses nothing (see
``Console.alert_stream`` for what may come twice).
Errors are JSON ``{"error": one line}``: 400 for a bad parameter, 404 for an unknown id, 503
when the store does not answer. With ``console.token`` set, every request but ``/healthz`` needs
it (``Authorization: Bearer``, or ``?token=`` once, then a same-site cookie).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from auditline.addresses import host_of, is_loopback
from auditline.alerting.subscriptions import Filters
from auditline.errors import AuditlineError, ConfigError, NotFoundError
from auditline.output import iso_time

from ..queries import Provenance
from ..verification import VerifyOptions
from . import views

logger = logging.getLogger(__name__)
T = TypeVar("T")
STATIC = Path(str(files(__package__) / "static"))
KEEPALIVE_S = 15.0
OVERLAP = timedelta(seconds=5)
PAGE_ROWS = 500
# the page runs its own scripts only and reaches nothing but this server
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
COOKIE = "auditline_console"
LIST_FILTERS = ("kinds", "rules", "jurisdictions", "models", "assets", "services", "states")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """The API over one store; ``app()`` is the aiohttp application."""

    def __init__(
        self,
        provenance: Provenance,
        options: VerifyOptions | None = None,
        *,
        token: str | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.provenance = provenance
        self.options = options or VerifyOptions()
        self.token = token
        self.poll_s = poll_s
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="auditline-console-store")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self.index)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/favicon.ico", self.no_icon)
        app.router.add_get("/api/meta", self.meta)
        app.router.add_get("/api/graph", self.graph)
        app.router.add_get("/api/node", self.node)
        app.router.add_get("/api/transfers", self.transfers)
        app.router.add_get("/api/drift", self.drift)
        app.router.add_get("/api/evidence", self.evidence)
        app.router.add_get("/api/streams", self.streams)
        app.router.add_get("/api/alerts", self.alerts)
        app.router.add_get("/api/alerts/stream", self.alert_stream)
        app.router.add_static("/static/", STATIC, show_index=False)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _: web.Application) -> None:
        """Queued reads are dropped; one running finishes before the store can be closed."""
        await asyncio.to_thread(self.reader.shutdown, wait=True, cancel_futures=True)

    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.reader, partial(fn, *args, **kwargs))

    # -- access and errors --------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except NotFoundError as exc:
            return _error(404, str(exc))
        except (ConfigError, ValidationError, ValueError) as exc:
            return _error(400, _one_line(exc))
        except AuditlineError as exc:
            return _error(503, str(exc))
        if self.token is not None and request.query.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    def _refused(self, request: web.Request) -> web.StreamResponse | None:
        """The answer to a request the console does not serve (None: serve it)."""
        if self.token is None:
            if is_loopback(host_of(request.host)):
                return None
            # served on loopback without a token: a page of another site that made its name
            # point here (DNS rebinding) sends its own Host, and is refused
            return _error(403, f"this console answers only to localhost, not to {request.host}")
        if request.path == "/healthz":
            return None
        given = _presented(request)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return _error(401, "this console needs its token: open /?token=TOKEN once")
        if request.path == "/" and "token" in request.query:  # keep it out of the history
            found = web.Response(status=303, headers={"Location": "/"})
            found.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
            return found
        return None

    # -- pages --------------------------------------------------------------------------------

    async def index(self, _: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={
            "Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY,
        })  # fmt: skip

    async def no_icon(self, _: web.Request) -> web.Response:
        """Browsers ask for it on every page the console serves (the evidence page too)."""
        return web.Response(status=204)

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    # -- the API ------------------------------------------------------------------------------

    async def meta(self, _: web.Request) -> web.Response:
        return web.json_response(await self._read(views.meta, self.provenance))

    async def graph(self, request: web.Request) -> web.Response:
        query = request.query
        value = await self._read(
            views.graph, self.provenance, _required(query, "node"),
            direction=query.get("direction", "both"), depth=_int(query, "depth", 10),
            as_of=_time(query, "as_of"),
        )  # fmt: skip
        return web.json_response(value)

    async def node(self, request: web.Request) -> web.Response:
        value = await self._read(views.node, self.provenance, _required(request.query, "id"))
        return web.json_response(value)

    async def transfers(self, request: web.Request) -> web.Response:
        query = request.query
        value = await self._read(
            views.transfers, self.provenance, classification=query.get("classification"),
            mechanism=query.get("mechanism"),
        )  # fmt: skip
        return web.json_response(value)

    async def drift(self, request: web.Request) -> web.Response:
        model = request.query.get("model")
        if not model:
            models = await self._read(views.drift_models, self.provenance)
            return web.json_response({"models": models})
        return web.json_response(await self._read(views.drift, self.provenance, model))

    async def evidence(self, request: web.Request) -> web.Response:
        from ..evidence import to_html, to_markdown

        query = request.query
        model = _required(query, "model")
        form = query.get("format", "json")
        if form not in ("json", "markdown", "html"):
            raise ConfigError(f"format {form}: give json, markdown or html")
        bundle = await self._read(views.bundle, self.provenance, model, self.options)
        name = "evidence-" + model.removeprefix("model:").replace(":", "-")
        headers = {}
        if query.get("download"):
            suffix = {"json": "json", "markdown": "md", "html": "html"}[form]
            headers["Content-Disposition"] = f'attachment; filename="{name}.{suffix}"'
        if form == "markdown":
            return web.Response(
                text=to_markdown(bundle), content_type="text/markdown", headers=headers
            )
        if form == "html":  # no script, no remote image, no link out, whatever the store holds
            headers["Content-Security-Policy"] = (
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
            )
            return web.Response(text=to_html(bundle), content_type="text/html", headers=headers)
        return web.json_response(bundle, headers=headers)

    async def streams(self, _: web.Request) -> web.Response:
        return web.json_response(await self._read(views.streams, self.provenance, self.options))

    async def alerts(self, request: web.Request) -> web.Response:
        """The newest alerts (up to 200) and the cursor a live stream starts from."""
        filters = _filters(request)
        page = await self._read(views.alerts, self.provenance, filters)
        return web.json_response(
            {"alerts": [alert for _, alert in page.found], "cursor": _cursor_text(page.last)}
        )

    async def alert_stream(self, request: web.Request) -> web.StreamResponse:
        """Alerts stored after the cursor (``Last-Event-ID`` or ``?after=``; none: from now).

        Each poll reads every row after the cursor, page by page, then the last ``OVERLAP`` of
        ingestion time before it once more, so that a row another sink stored with an earlier
        time than one already sent is still seen. An alert is sent once per connection; after a
        reconnection one of those last seconds may come again (the page keeps one row per id).
        """
        filters = _filters(request)
        text = request.headers.get("Last-Event-ID") or request.query.get("after")
        cursor: views.Cursor | None
        if text:
            cursor = _cursor(text)
        else:
            cursor = (await self._read(views.alerts, self.provenance, Filters(), limit=1)).last
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        })  # fmt: skip
        await response.prepare(request)
        sent: dict[str, datetime] = {}
        quiet = 0.0
        while True:
            found, cursor = await self._poll(filters, cursor or _EPOCH)
            for at, alert in found:
                if alert["alert_id"] in sent:
                    continue
                sent[alert["alert_id"]] = at[0]
                data = json.dumps(alert, separators=(",", ":"))
                await response.write(
                    f"id: {_cursor_text(cursor)}\nevent: alert\ndata: {data}\n\n".encode()
                )
                quiet = 0.0
            horizon = cursor[0] - 2 * OVERLAP
            sent = {a: t for a, t in sent.items() if t >= horizon}
            if quiet >= KEEPALIVE_S:
                await response.write(b": keep-alive\n\n")
                quiet = 0.0
            await asyncio.sleep(self.poll_s)
            quiet += self.poll_s

    async def _poll(
        self, filters: Filters, cursor: views.Cursor
    ) -> tuple[list[tuple[views.Cursor, dict[str, Any]]], views.Cursor]:
        """What was stored after ``cursor`` (every page) and in the overlap before it; the cursor
        of the last row read."""
        found = []
        overlap = await self._read(
            views.alerts, self.provenance, filters, after=(cursor[0] - OVERLAP, ""), through=cursor,
            limit=PAGE_ROWS,
        )  # fmt: skip
        found += overlap.found
        while True:
            page = await self._read(
                views.alerts, self.provenance, filters, after=cursor, limit=PAGE_ROWS
            )
            found += page.found
            cursor = page.last or cursor
            if page.rows < PAGE_ROWS:
                return sorted(found, key=lambda item: item[0]), cursor


_EPOCH = (datetime(1970, 1, 1, tzinfo=UTC), "")


def _presented(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    return request.query.get("token") or request.cookies.get(COOKIE)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _required(query: Any, name: str) -> str:
    value: str | None = query.get(name)
    if not value:
        raise ConfigError(f"the {name} parameter is missing")
    return value


def _int(query: Any, name: str, default: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} {value} is not a whole number") from None


def _time(query: Any, name: str) -> datetime | None:
    value = query.get(name)
    if not value:
        return None
    try:
        return iso_time(value)
    except Exception:  # noqa: BLE001 - argparse's error type, one message
        raise ConfigError(f"{name} {value} is not an ISO time (e.g. 2026-03-01T12:00Z)") from None


def _filters(request: web.Request) -> Filters:
    query = request.query
    given: dict[str, Any] = {
        name: tuple(filter(None, query[name].split(","))) for name in LIST_FILTERS if name in query
    }
    if "min_severity" in query:
        given["min_severity"] = query["min_severity"]
    return Filters.model_validate(given)


def _cursor_text(cursor: views.Cursor | None) -> str:
    if cursor is None:
        return ""
    return f"{int(cursor[0].timestamp() * 1000)}.{cursor[1]}"


def _cursor(text: str) -> views.Cursor:
    millis, _, event_id = text.partition(".")
    try:
        return datetime.fromtimestamp(int(millis) / 1000, UTC), event_id
    except ValueError:
        raise ConfigError(f"cursor {text} is not a console cursor (MILLIS.EVENT_ID)") from None
