"""``auditline console``: serve the auditor's console until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from auditline.addresses import is_loopback
from auditline.addresses import port as port_type
from auditline.errors import ConfigError
from auditline.settings import load_settings, redacted_dsn

from ..cli import _verify_options
from ..queries import Provenance
from ..store import open_existing


def cmd_console(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .app import Console

    settings = load_settings()
    config = settings.console
    host = args.host or config.host
    port = config.port if args.port is None else args.port
    token = config.token.get_secret_value() if config.token else None
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"the console would serve {host} to other machines without a token: set "
            "AUDITLINE_CONSOLE__TOKEN, or bind 127.0.0.1"
        )
    store = open_existing(settings.clickhouse)
    console = Console(
        Provenance(store), _verify_options(settings), token=token, poll_s=config.poll_ms / 1000
    )

    async def serve() -> None:
        runner = web.AppRunner(console.app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"the console cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "pick another --port (or AUDITLINE_CONSOLE__PORT)"
            ) from None
        bound = runner.addresses[0][1] if runner.addresses else port  # the one port 0 chose
        where = "via its owner" if store.via_owner else "opened here"
        dsn = redacted_dsn(settings.clickhouse.dsn)
        print(
            f"console: ready on http://{host}:{bound}/ (store {dsn}, database {store.database}, "
            f"{where}); Ctrl-C stops it",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    finally:
        with contextlib.suppress(Exception):
            store.close()
    return 0


def register(sub: Any) -> None:
    console = sub.add_parser(
        "console",
        help="the auditor's console: lineage graph, live alerts, transfers, drift, evidence",
        description="A read-only local web app over the audit store (AUDITLINE_CLICKHOUSE__DSN): "
        "the lineage graph of any asset or model version with its violations, live alerts, "
        "transfers by origin and destination, drift over time, evidence bundles and the "
        "verification of every producer stream. On the embedded store it reads through the "
        "process that owns it (e.g. a running sink) or opens it itself. docs/console.md.",
    )
    console.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    console.add_argument(
        "--port",
        type=port_type,
        default=None,
        help="port (default 8765, AUDITLINE_CONSOLE__PORT; 0: any)",
    )
    console.set_defaults(run=cmd_console)
