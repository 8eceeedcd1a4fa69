"""``auditline alerts tail | serve | test``."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from auditline.alerting.subscriptions import Filters, load_subscriptions, parse_duration
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
        as_json=args.json, limit=args.limit, idle_exit_s=args.idle_exit,
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
    test = subscription.model_copy(
        update={"webhook": subscription.webhook.model_copy(update={"retries": 0})}
    )

    async def send() -> str:
        async with aiohttp.ClientSession() as session:
            delivery = WebhookDelivery(test, load_settings(), session)
            data, kind = _sample_request(delivery)
            status, reason = await delivery._post(_sample(), data, kind)
            return "" if status is not None and 200 <= status < 300 else reason

    failure = asyncio.run(send())
    if failure:
        raise UnavailableError(f"{subscription.webhook.url} did not take the sample: {failure}")
    print(f"{subscription.name}: sample alert delivered to {subscription.webhook.url}")
    return 0


def _sample() -> Any:
    from auditline.alerting.view import AlertView

    return AlertView(
        alert_id=f"test-{int(time.time())}", kind="violation", severity="info", rule="TEST",
        title="a sample alert from auditline alerts test", where="nowhere",
        time=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), state="alert",
    )  # fmt: skip


def _sample_request(delivery: Any) -> tuple[bytes, str]:
    from auditline.alerting import payloads

    hook = delivery.hook
    return payloads.body(_sample(), hook.format, delivery.subscription.name, delivery.source)


def register(sub: Any) -> None:
    alerts = sub.add_parser(
        "alerts",
        help="alerts as they happen: tail in the terminal, webhooks and SSE (docs/alerts.md)",
    )
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail = actions.add_parser("tail", help="print alerts as they happen")
    tail.add_argument("--kind", action="append", choices=["violation", "drift", "integrity"])
    tail.add_argument(
        "--min-severity", default="info", choices=["info", "low", "medium", "high", "critical"]
    )
    for name, what in (("rule", "rule id (or drift statistic, integrity finding)"),
                       ("jurisdiction", "country or group code"), ("model", "name or name:version"),
                       ("asset", "asset id"), ("service", "producer service"),
                       ("state", "drift opened|closed; violation deny|alert ...")):  # fmt: skip
        tail.add_argument(f"--{name}", action="append", help=f"{what} (repeat for any of several)")
    tail.add_argument("--subscriptions", help="subscriptions YAML (with --subscription)")
    tail.add_argument("--subscription", help="use this subscription's filters")
    start = tail.add_mutually_exclusive_group()
    start.add_argument("--since", help="from this long ago: 30s, 15m, 2h, 1d")
    start.add_argument("--from-beginning", action="store_true", help="every alert still kept")
    tail.add_argument("--json", action="store_true", help="one JSON object a line")
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
