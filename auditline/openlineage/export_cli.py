"""``auditline openlineage export``: the store's lineage out, as OpenLineage events, through the
openlineage-python client and its transports (docs/openlineage.md "Export").

The audit log is read in pages of ``PAGE`` rows in event-time order (a page per query, so that
a slow consumer holds no query open), each row's payload decoded and mapped by ``export``, each
OpenLineage event handed to the client's ``emit`` as it is built. Delivery: HTTP posts each
event and stops at the first one the consumer refuses or cannot take; Kafka produces them all
and waits for their delivery at the end. Run ids are deterministic, so an interrupted export is
repeated as a whole, or resumed with ``--since``.

State: the latest declaration of each asset, as of each event (the declarations before
``--since`` are read first, and they are read whatever ``--kind`` says), so that a movement's or
a training run's datasets carry what is declared of them; it holds one declaration an asset.

Left out: events that auditline itself converted from OpenLineage (``--include-ingested`` keeps
them), i.e. those of the ingesting service, ``cli.SERVICE`` or any service that emitted an
``OpenLineageEvent``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from uuid import UUID

from auditline.errors import AuditlineError, ConfigError, EmitError, UnavailableError
from auditline.output import iso_time
from auditline.settings import AuditlineSettings, load_settings

PAGE = 1000
"""Audit-log rows read per query."""
CLOSE_TIMEOUT_S = 60.0
"""How long the end of an export waits for a transport's last deliveries (Kafka)."""
KINDS = ("AssetDeclared", "DataMovement", "TrainingRun", "ModelDeployed")
"""The kinds an export maps (``export.EXPORTED``; named here to build the parser without the
client)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_END = datetime(2299, 12, 31, tzinfo=UTC)  # the last day a DateTime64 holds
_WHERE = (
    "kind IN {kinds:Array(String)} AND event_time >= {since:DateTime64(3, 'UTC')} "
    "AND event_time < {until:DateTime64(3, 'UTC')}"
)
_DELIVERY_LOGGER = "openlineage.client.transport.kafka"
_CONSOLE_LOGGER = "openlineage.client.transport.console"


@dataclass(frozen=True)
class Query:
    """Which audit events to export: kinds, ``since`` ≤ event time < ``until``, producer
    services left out."""

    kinds: tuple[str, ...] = KINDS
    since: datetime = _EPOCH
    until: datetime = _END
    left_out: frozenset[str] = frozenset()

    def parameters(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds), "since": self.since, "until": self.until,
            "left_out": sorted(self.left_out),
        }  # fmt: skip


def read_rows(store: Any, query: Query, page: int = PAGE) -> Iterator[tuple[str, str, Any]]:
    """(event id, kind, payload) of the audit events ``query`` names, in (event time, event id)
    order, each once: ``page`` rows per query, each page after the last row of the one before."""
    sql = (
        f"SELECT event_id, event_time, kind, payload FROM `{store.database}`.audit_log "
        f"WHERE {_WHERE} AND producer_service NOT IN {{left_out:Array(String)}} "
        "AND ({first:Bool} OR (event_time, event_id) > ({after:DateTime64(3, 'UTC')}, {id:UUID})) "
        "ORDER BY event_time, event_id LIMIT {page:UInt32}"
    )
    after: tuple[datetime, UUID] | None = None
    while True:
        _, rows = store.rows(sql, {
            **query.parameters(), "page": page, "first": after is None,
            "after": after[0] if after else _EPOCH, "id": after[1] if after else UUID(int=0),
        })  # fmt: skip
        previous = None
        for event_id, _, kind, payload in rows:
            if event_id != previous:  # a duplicate row the engine has not merged away yet
                yield str(event_id), kind, payload
            previous = event_id
        if len(rows) < page:
            return
        after = (rows[-1][1], rows[-1][0])


def cmd_export(args: argparse.Namespace) -> int:
    from auditline.openlineage.cli import SERVICE

    export, open_existing = _needed()
    if args.since and args.until and args.since >= args.until:
        raise ConfigError("--since must be before --until")
    settings = load_settings()
    destination = _destination(args, settings)
    store = open_existing(settings.clickhouse)
    try:
        left_out = frozenset() if args.include_ingested else _ingesting(store, SERVICE)
        query = Query(tuple(args.kind or KINDS), args.since or _EPOCH, args.until or _END, left_out)
        skipped = _count(store, query) if left_out else 0
        with _Sender(destination) as sender:
            tally = _send(store, query, export, sender)
    finally:
        store.close()
    print(tally.summary(destination.target, skipped), file=sys.stderr if args.console else None)
    return 0


@dataclass
class _Tally:
    """What an export read and sent, for the summary line."""

    read: Counter[str]
    sent: Counter[str]
    unreadable: int = 0

    def summary(self, target: str, skipped: int) -> str:
        line = (
            f"openlineage: exported {sum(self.sent.values())} events{_counted(self.sent)} from "
            f"{sum(self.read.values())} audit events{_counted(self.read)} to {target}"
        )
        if skipped:
            line += f"; {skipped} converted from OpenLineage left out (--include-ingested)"
        if self.unreadable:
            line += f"; {self.unreadable} unreadable left out (run `auditline verify`)"
        return line


def _counted(counts: Counter[str]) -> str:
    return f" ({', '.join(f'{n} {kind}' for kind, n in sorted(counts.items()))})" if counts else ""


def _send(store: Any, query: Query, export: Any, sender: _Sender) -> _Tally:
    """Map and send what ``query`` names; every declaration read (those before ``since``
    first) is the state the mapping reads the facts of the assets it names from."""
    tally = _Tally(Counter(), Counter())
    declared: dict[str, Any] = {}
    before = replace(query, kinds=("AssetDeclared",), since=_EPOCH, until=query.since)
    for _, event in _decoded(store, before, export, tally):
        declared[event.asset_id] = event
    reading = replace(query, kinds=tuple({*query.kinds, "AssetDeclared"}))
    for kind, event in _decoded(store, reading, export, tally):
        if kind == "AssetDeclared":
            declared[event.asset_id] = event
        if kind not in query.kinds or export.ingested(event, query.left_out):
            continue  # read for its facts only, or (the query left them out) converted
        tally.read[kind] += 1
        for lineage in export.to_openlineage(event, declared):
            sender.send(lineage, sum(tally.sent.values()))
            tally.sent[type(lineage).__name__] += 1
    return tally


def _decoded(store: Any, query: Query, export: Any, tally: _Tally) -> Iterator[tuple[str, Any]]:
    """(kind, event) of each row ``query`` names; one that does not decode is named on stderr."""
    from pydantic import ValidationError

    models = {model.__name__: model for model in export.EXPORTED}
    for event_id, kind, payload in read_rows(store, query):
        try:
            yield kind, models[kind].model_validate_json(payload)
        except ValidationError as exc:
            tally.unreadable += 1
            reason = str(exc).splitlines()[0]
            print(f"auditline: event {event_id}: its stored {kind} does not decode ({reason}): "
                  "left out", file=sys.stderr)  # fmt: skip


def _ingesting(store: Any, service: str) -> frozenset[str]:
    """The services whose events came from OpenLineage: the ingesting service's default name and
    every service that stored an ``OpenLineageEvent`` (the ingestion's evidence)."""
    _, rows = store.rows(
        f"SELECT DISTINCT producer_service FROM `{store.database}`.audit_log "
        "WHERE kind = 'OpenLineageEvent'"
    )
    return frozenset({service, *(row[0] for row in rows)})


def _count(store: Any, query: Query) -> int:
    """How many events ``query`` leaves out as converted from OpenLineage."""
    _, rows = store.rows(
        f"SELECT count() FROM `{store.database}`.audit_log "
        f"WHERE {_WHERE} AND producer_service IN {{left_out:Array(String)}}",
        query.parameters(),
    )
    return int(rows[0][0])


def _needed() -> tuple[Any, Any]:
    """The mapping (it needs the OpenLineage client) and the store's opener."""
    try:
        from auditline.openlineage import export
    except ImportError as exc:
        raise ConfigError("openlineage export needs: pip install 'auditline[openlineage]'") from exc
    try:
        from auditline.sinks.store import open_existing
    except ImportError as exc:
        raise ConfigError("openlineage export needs: pip install 'auditline[store]'") from exc
    return export, open_existing


# ---- where the events go -------------------------------------------------------------------


@dataclass(frozen=True)
class _Destination:
    """A transport's configuration as the client's factory takes it, the whole client
    configuration (``--transport-config``), and the destination in words."""

    transport: dict[str, Any]
    target: str
    client_config: dict[str, Any] | None = None


def _destination(args: argparse.Namespace, settings: AuditlineSettings) -> _Destination:
    http_only = [name for name in ("endpoint", "api_key_env", "timeout")
                 if getattr(args, name) is not None]  # fmt: skip
    if http_only and not args.url:
        options = ", ".join("--" + name.replace("_", "-") for name in http_only)
        raise ConfigError(f"{options}: only with --url (the HTTP transport)")
    if args.url:
        return _http(args)
    if args.kafka_topic:
        return _kafka(args.kafka_topic, settings)
    if args.file:
        path = str(Path(args.file).resolve())
        return _Destination({"type": "file", "log_file_path": path, "append": True}, path)
    if args.console:
        return _Destination({"type": "console"}, "standard output")
    return _from_file(Path(args.transport_config))


def _http(args: argparse.Namespace) -> _Destination:
    endpoint = args.endpoint or "api/v1/lineage"
    config: dict[str, Any] = {"type": "http", "url": args.url, "endpoint": endpoint,
                              "timeout": args.timeout or 5.0}  # fmt: skip
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env {args.api_key_env}: that variable is not set")
        config["auth"] = {"type": "api_key", "apiKey": key}
    return _Destination(config, urljoin(args.url, endpoint))


def _kafka(topic: str, settings: AuditlineSettings) -> _Destination:
    from auditline.topics import require_broker, with_logger

    conf = settings.kafka.client_conf()
    require_broker(conf, settings.kafka.connect_timeout_s)
    config = {"type": "kafka", "topic": topic, "config": with_logger(conf), "flush": False}
    return _Destination(config, f"Kafka topic {topic} at {settings.kafka.bootstrap_servers}")


def _from_file(path: Path) -> _Destination:
    """An ``openlineage.yml``: its ``transport`` for the factory, the rest for the client."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not YAML: {' '.join(str(exc).split())}") from exc
    transport = loaded.get("transport") if isinstance(loaded, dict) else None
    if not isinstance(transport, dict) or not isinstance(transport.get("type"), str):
        raise ConfigError(
            f"{path} names no transport: an openlineage.yml has `transport:` with a `type` "
            "(http, kafka, file, console, composite ...)"
        )
    return _Destination(dict(transport), f"{_described(transport)} (from {path})", loaded)


def _described(transport: dict[str, Any]) -> str:
    """Where a transport configuration sends, in words."""
    kind = transport["type"]
    if kind == "http" and isinstance(transport.get("url"), str):
        return urljoin(str(transport["url"]), str(transport.get("endpoint") or "api/v1/lineage"))
    if kind == "kafka" and transport.get("topic"):
        return f"Kafka topic {transport['topic']}"
    if kind == "file" and transport.get("log_file_path"):
        return str(transport["log_file_path"])
    return f"the {kind} transport"


class _Sender:
    """The client over one transport: emits, translates the transport's failures once (into
    ``UnavailableError``: exit 3, or ``EmitError``), closes."""

    def __init__(self, destination: _Destination) -> None:
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport import get_default_factory

        self.target = destination.target
        try:
            transport = get_default_factory().create(dict(destination.transport))
        except Exception as exc:
            raise ConfigError(f"cannot set up {self.target}: {_line(exc)}") from exc
        self.client = OpenLineageClient(transport=transport, config=destination.client_config)
        if self.client.transport.kind == "noop":
            raise ConfigError("OPENLINEAGE_DISABLED is set: the client would send nothing")
        self.failures = _Failures()
        self.console = logging.StreamHandler(sys.stdout)
        self.console.setFormatter(logging.Formatter("%(message)s"))
        self.console_logger = logging.getLogger(_CONSOLE_LOGGER)  # it logs each event at INFO
        self.console_was = (self.console_logger.level, self.console_logger.propagate)

    def __enter__(self) -> _Sender:
        logging.getLogger(_DELIVERY_LOGGER).addHandler(self.failures)
        self.console_logger.addHandler(self.console)
        self.console_logger.setLevel(logging.INFO)
        self.console_logger.propagate = False
        return self

    def send(self, event: Any, sent: int) -> None:
        try:
            self.client.emit(event)
        except Exception as exc:
            raise _failure(exc, self.target, sent) from exc

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        try:
            delivered = self.client.close(CLOSE_TIMEOUT_S)
        finally:
            logging.getLogger(_DELIVERY_LOGGER).removeHandler(self.failures)
            self.console_logger.removeHandler(self.console)
            self.console_logger.setLevel(self.console_was[0])
            self.console_logger.propagate = self.console_was[1]
        if error is not None:
            return
        if not delivered:
            raise UnavailableError(
                f"{self.target} did not take every event within {CLOSE_TIMEOUT_S:.0f} s: "
                "export again (run ids are deterministic, consumers merge repeated events)"
            )
        if self.failures.count:
            raise UnavailableError(
                f"{self.failures.count} events were not delivered to {self.target}: "
                f"{self.failures.first}; export again once it takes them"
            )


class _Failures(logging.Handler):
    """Counts the deliveries the Kafka transport reports as failed (it logs them, raises
    nothing)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count, self.first = 0, ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if not self.first:
            error = record.msg
            self.first = error.str() if hasattr(error, "str") else record.getMessage()


def _failure(exc: Exception, target: str, sent: int) -> AuditlineError:
    """A transport's exception as auditline's error, one line for people."""
    import requests
    from confluent_kafka import KafkaException

    before = f" after {sent} events were sent" if sent else " (nothing was sent)"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        text = " ".join(exc.response.text.split())[:200]
        said = f"HTTP {status} {exc.response.reason or ''}".strip() + (f": {text}" if text else "")
        kind = UnavailableError if status >= 500 else EmitError
        return kind(f"{target} refused an event: {said}{before}")
    if isinstance(exc, requests.Timeout):
        return UnavailableError(f"{target} did not answer in time{before}")
    if isinstance(exc, requests.exceptions.RetryError):
        return UnavailableError(f"{target} kept answering with server errors{before}")
    if isinstance(exc, requests.ConnectionError):
        return UnavailableError(f"cannot reach {target}: {_reason(exc)}{before}")
    if isinstance(exc, BufferError | KafkaException):
        return UnavailableError(f"cannot produce to {target}: {_line(exc)}{before}")
    return EmitError(f"cannot send to {target}: {_line(exc)}{before}")


def _reason(exc: BaseException) -> str:
    """The operating system's words for a failed connection (``Connection refused``, ``Name or
    service not known``), found down the chain of causes; else a plain phrase."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror)
        todo += [getattr(current, "reason", None), current.__cause__, current.__context__]
        todo += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
    return "the connection failed"


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


# ---- the command line ----------------------------------------------------------------------


def add_export(actions: Any) -> None:
    """Add ``export`` to the ``openlineage`` sub-commands (``actions``)."""
    export = actions.add_parser(
        "export",
        help="send auditline's lineage (assets, movements, training runs, deployments) as "
        "OpenLineage events to any OpenLineage consumer (Marquez ...)",
        description="Reads the audit store (AUDITLINE_CLICKHOUSE__DSN) in event-time order and "
        "emits each asset declaration, movement, training run and deployment as OpenLineage "
        "events, with the `auditline` facets, through the openlineage-python client's "
        "transports. Events auditline converted from OpenLineage are left out unless "
        "--include-ingested. Run ids are deterministic: exporting again is safe. Exit 0 sent, "
        "2 bad input or refused by the consumer, 3 the consumer unreachable, 4 no store.",
    )
    group = export.add_argument_group("where to (one of)")
    where = group.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="HTTP transport: the consumer, e.g. http://localhost:5000")
    where.add_argument("--kafka-topic", metavar="TOPIC",
                       help="Kafka transport: this topic (AUDITLINE_KAFKA__* brokers)")  # fmt: skip
    where.add_argument("--file", metavar="PATH", help="File transport: one event a line, appended")
    where.add_argument("--console", action="store_true",
                       help="one event a line on standard output (summary: stderr)")  # fmt: skip
    where.add_argument("--transport-config", metavar="openlineage.yml",
                       help="an OpenLineage client configuration file")  # fmt: skip
    http = export.add_argument_group("HTTP transport")
    http.add_argument("--endpoint", default=None, help="path under --url (default api/v1/lineage)")
    http.add_argument("--api-key-env", metavar="NAME", default=None,
                      help="send the API key this environment variable holds (Bearer)")  # fmt: skip
    http.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help="per request (default 5)")  # fmt: skip
    what = export.add_argument_group("what")
    what.add_argument("--since", type=iso_time, default=None, metavar="ISO-TIME",
                      help="events from this time (no zone: UTC)")  # fmt: skip
    what.add_argument("--until", type=iso_time, default=None, metavar="ISO-TIME",
                      help="events before this time")  # fmt: skip
    what.add_argument("--kind", action="append", choices=KINDS,
                      help="only this kind (repeat; default all four)")  # fmt: skip
    what.add_argument("--include-ingested", action="store_true",
                      help="also events converted from OpenLineage (they loop)")  # fmt: skip
    export.set_defaults(run=cmd_export)
