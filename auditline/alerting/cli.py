"""``auditline alerts tail | serve | test``."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditline.alerting.payloads import redacted
from auditline.alerting.subscriptions import Filters, load_subscriptions, parse_duration
from auditline.alerting.view import KINDS, AlertView
from auditline.errors import ConfigError, UnavailableError
from auditline.settings import load_settings


def cmd_tail(args: argparse.Namespace) -> int:
    from auditline.alerting.tail import tail

    if args.subscription:
        if not args.subscriptions:
            raise ConfigError("--subscription needs --subscriptions FILE")
        filters = load_subscriptions(Path(args.subscriptions)).named(args.subscription).filters
    else:
        filters = _filters(args)
    since_ms = None
    if args.since:
        since_ms = int((time.time() - parse_duration(args.since)) * 1000)
    tail(
        load_settings(), filters.matches,
        start="beginning" if args.from_beginning else "end", since_ms=since_ms,
        as_json=args.json, plain=args.plain, limit=args.limit, idle_exit_s=args.idle_exit,
    )  # fmt: skip
    return 0


def _filters(args: argparse.Namespace) -> Filters:
    try:
        return Filters(
            kinds=tuple(args.kind or ()), min_severity=args.min_severity,
            rules=tuple(args.rule or ()), jurisdictions=tuple(args.jurisdiction or ()),
            models=tuple(args.model or ()), assets=tuple(args.asset or ()),
            services=tuple(args.service or ()), states=tuple(args.state or ()),
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"alert filters: {exc}") from exc


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from auditline.alerting.service import serve
    except ImportError:
        raise ConfigError("alerts serve needs: pip install 'auditline[alerts]'") from None
    subscriptions = load_subscriptions(Path(args.subscriptions))
    asyncio.run(serve(load_settings(), subscriptions, args.host, args.port))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """Send one sample alert through a webhook subscription (one attempt); 0 on a 2xx."""
    try:
        import aiohttp

        from auditline.alerting.webhook import WebhookDelivery
    except ImportError:
        raise ConfigError("alerts test needs: pip install 'auditline[alerts]'") from None
    subscription = load_subscriptions(Path(args.subscriptions)).named(args.subscription)
    if subscription.webhook is None:
        raise ConfigError(f"{subscription.name} is not a webhook subscription: nothing to send")

    async def send() -> tuple[bool, str]:
        async with aiohttp.ClientSession() as session:
            return await WebhookDelivery(subscription, load_settings(), session).send_once(
                sample_alert()
            )

    ok, reason = asyncio.run(send())
    where = redacted(subscription.webhook.url)
    if not ok:
        raise UnavailableError(f"{where} did not take the sample alert: {reason}")
    print(f"{subscription.name}: sample alert delivered to {where}")
    return 0


def sample_alert() -> AlertView:
    return AlertView(
        alert_id=f"test-{int(time.time())}", kind="violation", severity="info", rule="TEST",
        title="a sample alert from auditline alerts test", where="nowhere",
        time=datetime.now(UTC).isoformat(timespec="seconds"), state="alert",
    )  # fmt: skip


def register(sub: Any) -> None:
    alerts = sub.add_parser(
        "alerts",
        help="alerts as they happen: tail in the terminal, webhooks and SSE (docs/alerts.md)",
    )
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail = actions.add_parser("tail", help="print alerts as they happen")
    tail.add_argument("--kind", action="append", choices=list(KINDS))
    tail.add_argument(
        "--min-severity", default="info", choices=["info", "low", "medium", "high", "critical"]
    )
    for name, what in (("rule", "rule id (or drift statistic, check, metric, integrity finding)"),
                       ("jurisdiction", "country or group code"), ("model", "name or name:version"),
                       ("asset", "asset id"), ("service", "producer service"),
                       ("state", "episodes: opened|closed; violations: deny ...")):  # fmt: skip
        tail.add_argument(f"--{name}", action="append", help=f"{what} (repeat for any of several)")
    tail.add_argument("--subscriptions", help="subscriptions YAML (with --subscription)")
    tail.add_argument("--subscription", help="use this subscription's filters")
    start = tail.add_mutually_exclusive_group()
    start.add_argument("--since", help="from this long ago: 30s, 15m, 2h, 1d")
    start.add_argument("--from-beginning", action="store_true", help="every alert still kept")
    form = tail.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object a line")
    form.add_argument(
        "--plain", action="store_true", help="plain lines on a terminal too (no colours)"
    )
    tail.add_argument("--limit", type=int, default=None, help="stop after this many alerts")
    tail.add_argument(
        "--idle-exit", type=float, default=None, metavar="SECONDS",
        help="stop after this long without alerts",
    )  # fmt: skip
    tail.set_defaults(run=cmd_tail)
    serve = actions.add_parser("serve", help="run the webhook and SSE subscriptions of a file")
    serve.add_argument("subscriptions", help="subscriptions YAML")
    serve.add_argument("--host", default="127.0.0.1", help="SSE and health address")
    serve.add_argument("--port", type=int, default=8090, help="SSE and health port")
    serve.set_defaults(run=cmd_serve)
    test = actions.add_parser("test", help="send a sample alert through a webhook subscription")
    test.add_argument("subscription")
    test.add_argument("--subscriptions", required=True, help="subscriptions YAML")
    test.set_defaults(run=cmd_test)
