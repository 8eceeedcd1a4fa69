"""``/metrics``, ``/healthz`` and ``/readyz`` for a long-running process without a web server
of its own (the sink): prometheus-client's WSGI app behind the standard library's WSGI server,
in a daemon thread. Enabled by ``AUDITLINE_METRICS__PORT``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

Readiness = Callable[[], tuple[bool, str]]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None  # scrapes are not news


def serve_health(host: str, port: int, registry: Any, ready: Readiness) -> Callable[[], None]:
    """Serve until the returned function is called; ``port`` 0 picks a free one."""
    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/readyz":
            ok, reason = ready()
            start("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"{reason}\n".encode()]
        return metrics(environ, start)  # type: ignore[no-any-return]

    server: WSGIServer = make_server(host, port, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="auditline-health", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    stop.port = server.server_port  # type: ignore[attr-defined]
    return stop
