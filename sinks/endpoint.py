"""Live queries on an embedded store: the owner process answers other processes' reads.

chDB locks its folder, so only the process that opened it (the owner) can query it. The owner
serves a loopback HTTP endpoint speaking enough of ClickHouse's HTTP interface for
clickhouse-connect's HTTP client: the query in the body, the ``query`` parameter or a multipart
form; ``param_*``; ``database``; settings as URL parameters; ``default_format``; ``/ping``; the
``X-ClickHouse-*`` response headers. Results stream in chunks unless ``wait_end_of_query=1``.

The contract of every request: ``Authorization: Bearer TOKEN`` (``endpoint.json``, mode 0600);
a session of its own, the client's settings then ``SET readonly = 1`` (the engine refuses writes,
DDL, ``file()``/``url()`` and lowering ``readonly``); one SELECT / WITH / SHOW / DESCRIBE /
EXPLAIN / EXISTS statement without INTO OUTFILE, as the engine's parser reads it (chDB lets KILL
QUERY and INTO OUTFILE through at ``readonly = 1``); it sees every insert the owner completed
before it started. With ``store.py``, the only module that touches the engine.

``POST /lineage/walk`` (same token) answers a lineage walk from this process's in-memory index
(``walks.py``): a JSON object ``database``, ``start``, ``upstream``, ``depth``, ``as_of`` (ms since
the epoch) in, ``{"steps": [[node, depth, edge_type, via], ...]}`` out, nearest first.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from .walks import EPOCH, MS, ROUTE, IndexWalks, engine_indexes

logger = logging.getLogger(__name__)

READ_STATEMENT = re.compile(r"^(SELECT|WITH|SHOW|DESCRIBE|EXPLAIN|EXISTS)\b")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
# Formats whose per-block chunks concatenate into one valid result (no global header or footer).
STREAMABLE = frozenset({"Native", "TabSeparated", "TSV", "CSV", "RowBinary", "JSONEachRow"})
# URL parameters of ClickHouse's HTTP transport, not engine settings.
TRANSPORT = frozenset({
    "query", "database", "default_format", "query_id", "session_id", "session_timeout",
    "session_check", "wait_end_of_query", "send_progress_in_http_headers", "compress",
    "http_headers_progress_interval_ms", "decompress", "buffer_size", "client_protocol_version",
    "quota_key", "role", "enable_http_compression", "user", "password",
    "cancel_http_readonly_queries_on_client_close",
})  # fmt: skip
CHDB_ONLY_FORMATS = frozenset({"dataframe", "arrowtable", "datastore"})  # chdb's Python results
MAX_BODY = 32 * 1024 * 1024
WALK_FIELDS = (
    "a lineage walk is a JSON object: database, start (strings), upstream (boolean), "
    "depth (>= 0), as_of (ms since 1970)"
)
READONLY, SYNTAX, AUTHENTICATION = 164, 62, 516
REFUSED = (
    "live queries on an embedded store are read-only: one SELECT, WITH, SHOW, DESCRIBE, EXPLAIN "
    "or EXISTS statement, without INTO OUTFILE; stop the owner process to write"
)


class EngineError(Exception):
    """A query the endpoint refused or the engine failed, with ClickHouse's error code."""

    def __init__(self, code: int, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code, self.status = code, status

    def body(self) -> bytes:
        text = str(self)
        return (
            text if text.startswith("Code: ") else f"Code: {self.code}. DB::Exception: {text}"
        ).encode()


@dataclass(frozen=True)
class Request:
    sql: str
    params: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    default_format: str = "TabSeparated"
    stream: bool = True


def parse_request(target: str, content_type: str, body: bytes) -> Request:
    """The query, bound parameters, settings and database of one ClickHouse HTTP request."""
    url = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    try:
        form = _form(content_type, body) if content_type.startswith("multipart/form") else {}
        text = body.decode() if not form else ""
    except UnicodeDecodeError as exc:
        raise EngineError(SYNTAX, "a live query must be UTF-8 text", 400) from exc
    values = {**url, **form}
    sql = "\n".join(part for part in (url.get("query"), form.get("query"), text) if part)
    if not sql.strip():
        raise EngineError(SYNTAX, "the request holds no query", 400)
    params = {k.removeprefix("param_"): v for k, v in values.items() if k.startswith("param_")}
    settings = {k: v for k, v in url.items() if k not in TRANSPORT and not k.startswith("param_")}
    for name in [*settings, values.get("default_format") or "TabSeparated"]:
        if not NAME.match(name) or name.lower() in CHDB_ONLY_FORMATS:
            raise EngineError(SYNTAX, f"{name[:80]} is not a setting or format name", 400)
    return Request(
        sql, params, settings, values.get("database") or None,
        values.get("default_format") or "TabSeparated", url.get("wait_end_of_query") != "1",
    )  # fmt: skip


@dataclass(frozen=True)
class WalkRequest:
    database: str
    start: str
    upstream: bool
    depth: int
    as_of: datetime


def parse_walk(body: bytes) -> WalkRequest:
    """The lineage walk a ``POST /lineage/walk`` body asks for."""
    try:
        data = json.loads(body)
        request = WalkRequest(data["database"], data["start"], data["upstream"], data["depth"],
                              EPOCH + data["as_of"] * MS)  # fmt: skip
        fields = (request.database, request.start, request.upstream, request.depth)
        if [type(f) for f in fields] != [str, str, bool, int] or request.depth < 0:
            raise TypeError(fields)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise EngineError(SYNTAX, WALK_FIELDS, 400) from exc
    return request


def _form(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() or not isinstance(name, str):
            raise EngineError(SYNTAX, "external data is not supported by live queries", 400)
        payload = part.get_payload(decode=True)
        fields[name] = payload.decode() if isinstance(payload, bytes) else ""
    return fields


class Engine:
    """Sessions on the owner's engine, one per request, each read-only before it runs anything."""

    def __init__(self, path: str) -> None:
        import chdb  # the owner has it: it opened the store through clickhouse-connect's chdb

        self.path, self._chdb = path, cast(Any, chdb)
        with self.session(Request("SELECT 1")) as conn:
            self.timezone = bytes(conn.query("SELECT timezone()", "RawBLOB").bytes()).decode()

    @contextmanager
    def session(self, request: Request) -> Iterator[Any]:
        conn = self._chdb.connect(self.path)
        try:
            for name, value in request.settings.items():
                _run(conn, f"SET {name} = {_literal(value)}")
            _run(conn, "SET readonly = 1")  # last: no setting of the client's can undo it
            if request.database:
                _run(conn, f"USE {_identifier(request.database)}")
            yield conn
        finally:
            conn.close()

    def arrow(self, sql: str) -> Any:
        """A read's result as a pyarrow table (a lineage index loads through it)."""
        with self.session(Request(sql)) as conn:
            return _run(conn, sql, "ArrowTable")

    def checked(self, conn: Any, sql: str) -> str:
        """``sql`` if the engine's parser reads it as one read statement without INTO OUTFILE."""
        formatted = bytes(_run(conn, "SELECT formatQuery({q:String})", q=_escaped(sql)).bytes())
        text = formatted.decode()
        if not READ_STATEMENT.match(text) or "INTO OUTFILE" in text:
            raise EngineError(READONLY, REFUSED, 403)
        return sql


def _run(conn: Any, sql: str, fmt: str = "RawBLOB", **params: str) -> Any:
    try:
        return conn.query(sql, fmt, params=params)
    except RuntimeError as exc:
        raise engine_error(exc) from exc


def engine_error(exc: Exception) -> EngineError:
    text = str(exc).strip()
    text = text[text.find("Code: ") :] if "Code: " in text else text
    code = re.match(r"Code: (\d+)", text)
    return EngineError(int(code.group(1)) if code else 1000, text or type(exc).__name__)


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _escaped(value: str) -> str:
    """A String query parameter's text form: the engine reads it with escape sequences."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


class EndpointServer(ThreadingHTTPServer):
    """Loopback HTTP server of one owner; ``stop()`` waits for the requests in flight."""

    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.engine = Engine(path)
        self.indexes, self._let_go = engine_indexes(path)  # shared with this process's stores
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = secrets.token_urlsafe(32)
        self._active, self._closing = 0, False
        self._idle = threading.Condition()
        self._thread = threading.Thread(
            target=self.serve_forever, name="auditline-store-endpoint", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait_s: float = 10.0) -> None:
        with self._idle:
            self._closing = True
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=wait_s)
        self._let_go()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("live query connection from %s failed", client_address, exc_info=True)

    def authorised(self, header: str | None) -> bool:
        return secrets.compare_digest((header or "").encode(), f"Bearer {self.token}".encode())

    @contextmanager
    def admitted(self) -> Iterator[bool]:
        with self._idle:
            admitted = not self._closing
            self._active += admitted
        try:
            yield admitted
        finally:
            with self._idle:
                self._active -= admitted
                self._idle.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: EndpointServer
    protocol_version = "HTTP/1.1"
    timeout = 60

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/ping":
            self._reply(200, b"Ok.\n", {})
        else:
            self._serve(self._query)

    def do_POST(self) -> None:
        self._serve(self._walk if urlsplit(self.path).path == ROUTE else self._query)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("live query endpoint: " + format, *args)

    def _serve(self, answer: Callable[[], None]) -> None:
        if not self.server.authorised(self.headers.get("Authorization")):
            self._fail(EngineError(AUTHENTICATION, "a live query needs the owner's token", 403))
            return
        with self.server.admitted() as admitted:
            if not admitted:
                self._fail(EngineError(210, "the owner is closing the store", 503))
                return
            try:
                answer()
            except EngineError as exc:
                self._fail(exc)

    def _query(self) -> None:
        self._answer(parse_request(self.path, self.headers.get("Content-Type", ""), self._body()))

    def _walk(self) -> None:
        request = parse_walk(self._body())
        walks = IndexWalks(self.server.indexes, request.database, self.server.engine.arrow)
        steps = walks.walk(
            request.start, upstream=request.upstream, depth=request.depth, as_of=request.as_of
        )
        body = json.dumps({"steps": steps}, ensure_ascii=False).encode()
        self._reply(200, body, {"Content-Type": "application/json; charset=utf-8"})

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise EngineError(READONLY, REFUSED, 411)
        size = self.headers.get("Content-Length") or "0"
        if not size.isdigit() or int(size) > MAX_BODY:
            raise EngineError(SYNTAX, f"a live query request is limited to {MAX_BODY} bytes", 413)
        return self.rfile.read(int(size))

    def _answer(self, request: Request) -> None:
        with self.server.engine.session(request) as conn:
            sql = self.server.engine.checked(conn, request.sql)
            found = TRAILING_FORMAT.search(sql)
            fmt = found.group(1) if found else request.default_format
            if fmt.lower() in CHDB_ONLY_FORMATS:
                raise EngineError(73, f"{fmt} is not a ClickHouse format", 400)
            headers = {
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Timezone": self.server.engine.timezone,
            }
            if request.stream and fmt in STREAMABLE:
                self._stream(conn, sql, fmt, request.params, headers)
                return
            result = _run(conn, sql, fmt, **request.params)
            summary = {"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read())}
            headers["X-ClickHouse-Summary"] = json.dumps(summary)
            self._reply(200, bytes(result.bytes()), headers)

    def _stream(
        self, conn: Any, sql: str, fmt: str, params: dict[str, str], headers: dict[str, str]
    ) -> None:
        """Block by block; an error before the first block is a plain error response."""
        try:
            stream = conn.send_query(sql, fmt, params=params)
        except RuntimeError as exc:
            raise engine_error(exc) from exc
        with stream:
            try:
                first = next(stream, None)
            except RuntimeError as exc:
                raise engine_error(exc) from exc
            tag = secrets.token_hex(8)
            self._head(
                200, {**headers, "X-ClickHouse-Exception-Tag": tag, "Transfer-Encoding": "chunked"}
            )
            try:
                for chunk in itertools.chain([first] if first is not None else [], stream):
                    self._chunk(bytes(chunk.bytes()))
            except RuntimeError as exc:  # mid-stream: ClickHouse's tagged exception block
                message = engine_error(exc).body()
                self._chunk(b"__exception__\r\n%s\r\n%s\n%d %s\r\n__exception__\r\n"
                            % (tag.encode(), message, len(message), tag.encode()))  # fmt: skip
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Connection": "close"}.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self._head(status, {**headers, "Content-Length": str(len(body))})
        self.wfile.write(body)

    def _fail(self, error: EngineError) -> None:
        logger.debug("live query refused: %s", error)
        self._reply(error.status, error.body(), {"X-ClickHouse-Exception-Code": str(error.code)})
