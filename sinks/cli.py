"""The store's CLI commands: migrate, sink, lineage, query, evidence, sql, verify."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import timedelta
from typing import Any

from auditline.errors import ConfigError
from auditline.integrity.keyring import verification_keys
from auditline.output import iso_time, json_value, render
from auditline.settings import AuditlineSettings, load_settings, redacted_dsn
from auditline.topics import require_broker

from .store import Store, connect, open_existing


def _store(settings: AuditlineSettings) -> Store:
    return connect(settings.clickhouse)


def _audit_store(settings: AuditlineSettings) -> Store:
    """The store an auditor's command reads: it must exist, never be created by the reading."""
    return open_existing(settings.clickhouse)


def _out(args: argparse.Namespace, columns: list[str], rows: list[Any]) -> None:
    print(render(columns, rows, args.format))


def cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import migrate

    settings = load_settings()
    applied = migrate(_store(settings), settings.clickhouse.cluster)
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_sink(args: argparse.Namespace) -> int:
    from .metrics import SinkMetrics
    from .migrate import migrate
    from .writer import Sink

    settings = load_settings()
    require_broker(settings.kafka.client_conf(), settings.kafka.connect_timeout_s)
    store = _store(settings)
    migrate(store, settings.clickhouse.cluster)
    metrics = SinkMetrics() if settings.metrics.port is not None else None
    sink = Sink(settings, store, metrics=metrics)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop_health = _serve_health(settings, sink, metrics)
    print(
        f"sink: ready: {settings.kafka.bootstrap_servers} ({settings.topic_prefix}.*) -> "
        f"{redacted_dsn(settings.clickhouse.dsn)} ({settings.clickhouse.database})"
        + (f"; metrics on port {stop_health.port}" if stop_health else ""),
        flush=True,
    )
    try:
        stats = sink.run(stop, idle_exit_s=args.idle_exit)
    finally:
        if stop_health is not None:
            stop_health()
        sink.close()
        store.close()  # the owner stops serving live queries; endpoint.json goes
    counts = ", ".join(f"{name} {value}" for name, value in vars(stats).items())
    print(f"sink stopped: {counts}", flush=True)
    return 0


def _serve_health(settings: AuditlineSettings, sink: Any, metrics: Any) -> Any:
    if metrics is None or settings.metrics.port is None:
        return None
    from auditline.observability import serve_health

    from .metrics import SinkReadiness

    ready = SinkReadiness(sink, settings.sink.batch_max_events)
    return serve_health(settings.metrics.host, settings.metrics.port, metrics.registry, ready)


def cmd_lineage(args: argparse.Namespace) -> int:
    from .queries import Provenance

    provenance = Provenance(_audit_store(load_settings()))
    provenance.require_node(args.node)
    if args.direction == "path":
        if not args.target:
            raise ConfigError("lineage path needs a target node: auditline lineage path FROM TO")
        provenance.require_node(args.target)
        route = provenance.path(args.node, args.target, depth=args.depth, as_of=args.as_of)
        if not route:
            print(
                f"no path from {args.node} to {args.target} within {args.depth} hops",
                file=sys.stderr,
            )
            return 1
        _out(args, ["step", "node"], list(enumerate(route)))
        return 0
    hits = provenance.walk(
        args.node, upstream=args.direction == "upstream", depth=args.depth, as_of=args.as_of
    )
    _out(
        args,
        ["node", "depth", "edge", "via"],
        [(h.node, h.depth, h.edge_type, h.via) for h in hits],
    )
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from .queries import Provenance

    provenance = Provenance(_audit_store(load_settings()))
    if args.what == "predictions":
        if not args.derived_from:
            raise ConfigError("query predictions needs --derived-from DATASET")
        provenance.require_node(args.derived_from)
        columns, rows = provenance.predictions_derived_from(args.derived_from, as_of=args.as_of)
    else:
        try:
            columns, rows = provenance.transfers(
                classification=args.classification,
                source=args.source,
                destination=args.destination,
                since=args.since,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    _out(args, columns, rows)
    return 0


def cmd_evidence(args: argparse.Namespace) -> int:
    from .evidence import evidence, to_html, to_markdown
    from .queries import Provenance

    settings = load_settings()
    options = _verify_options(settings)
    bundle = evidence(Provenance(_audit_store(settings)), args.model_version, options)
    if args.html:
        print(to_html(bundle))
    elif args.markdown:
        print(to_markdown(bundle))
    else:
        print(json.dumps(json_value(bundle), indent=2))
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """One read-only query (sinks/sqldoor.py); Ctrl-C cancels it and exits 130."""
    from .sqldoor import Bounds, run

    store = _audit_store(load_settings())
    bounds = Bounds(seconds=args.timeout, max_result_rows=args.max_rows)
    result: dict[str, Any] = {}

    def query() -> None:
        try:
            result["rows"] = run(store, args.query, bounds)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            result["error"] = exc

    worker = threading.Thread(target=query, name="auditline-sql", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        print("auditline: interrupted: the query was cancelled", file=sys.stderr, flush=True)
        os._exit(130)  # the engine runs in this process: ending it ends the query
    if "error" in result:
        raise result["error"]
    _out(args, *result["rows"])
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Read-only: recompute every chain and judge it against every anchor; writes nothing."""
    from .verification import verify_log

    settings = load_settings()
    options = _verify_options(settings, args.require_signature)
    extra = _broker_anchors(settings) if args.broker else None
    store = _audit_store(settings)
    report = verify_log(
        store,
        producer=args.producer,
        since=args.since,
        keys=options.keys,
        require_signature=options.require_signature,
        broker_checkpoints=extra.checkpoints if extra else (),
        extra_anchors=extra.heads if extra else (),
        settle=timedelta(seconds=args.settle),
        attestation_key=options.attestation_key,
    )
    _print_findings(args, report)
    verdict = "intact" if report.ok else f"{len(report.findings)} finding(s)"
    print(
        f"verified {report.events} events in {report.streams} streams against "
        f"{report.anchors} anchors: {verdict}",
        file=sys.stderr,
    )
    return 0 if report.ok else 1


def cmd_attest(args: argparse.Namespace) -> int:
    """Verify, then store the heads of the intact streams as signed anchors for later runs."""
    from .verification import attest, verify_log

    settings = load_settings()
    options = _verify_options(settings)
    store = _audit_store(settings)
    report = verify_log(
        store,
        keys=options.keys,
        require_signature=options.require_signature,
        attestation_key=options.attestation_key,
    )
    _print_findings(args, report)
    written = attest(store, report, options.attestation_key)
    print(f"attested {written} of {report.streams} streams", file=sys.stderr)
    return 0 if report.ok else 1


def _print_findings(args: argparse.Namespace, report: Any) -> None:
    rows = [(f.stream, f.sequence, str(f.kind), f.event_id, f.detail) for f in report.findings]
    if rows:
        _out(args, ["stream", "sequence", "finding", "event_id", "detail"], rows)


def _broker_anchors(settings: AuditlineSettings) -> Any:
    from auditline.integrity.broker import broker_anchors

    return broker_anchors(settings)


def _verify_options(settings: AuditlineSettings, require_signature: bool = False) -> Any:
    """Keys, signature requirement and attestation key, from the settings (and the flag)."""
    from .verification import VerifyOptions

    return VerifyOptions(
        verification_keys(settings),
        settings.producer.require_signing or require_signature,
        _attestation_key(settings),
    )


def _attestation_key(settings: AuditlineSettings) -> bytes | None:
    key = settings.sink.checkpoint_key
    if key is None:
        return None
    try:
        return bytes.fromhex(key.get_secret_value())
    except ValueError as exc:
        raise ConfigError(
            "AUDITLINE_SINK__CHECKPOINT_KEY must be hex (e.g. `openssl rand -hex 32`)"
        ) from exc


def register(sub: Any) -> None:
    """Add the store commands to the ``auditline`` parser."""
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument(
        "--format",
        choices=["table", "json", "csv", "markdown"],
        default="table",
        help="output format",
    )

    sub.add_parser("migrate", help="create or upgrade the audit store schema").set_defaults(
        run=cmd_migrate
    )

    sink = sub.add_parser("sink", help="run the Kafka -> ClickHouse sink until stopped")
    sink.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this long without messages (default: run until SIGTERM)",
    )
    sink.set_defaults(run=cmd_sink)

    lineage = sub.add_parser("lineage", help="walk the lineage graph", parents=[fmt])
    lineage.add_argument("direction", choices=["upstream", "downstream", "path"])
    lineage.add_argument(
        "node", help="node id: an asset id, run:<id>, model:<name>:<version>, deployment:<id>"
    )
    lineage.add_argument("target", nargs="?", help="with path: the node to reach")
    lineage.add_argument("--depth", type=int, default=10, help="hops to follow (default 10)")
    lineage.add_argument(
        "--as-of", type=iso_time, default=None, help="the graph as it was at this time"
    )
    lineage.set_defaults(run=cmd_lineage)

    query = sub.add_parser("query", help="auditor questions", parents=[fmt])
    query.add_argument("what", choices=["predictions", "transfers"])
    query.add_argument("--derived-from", help="predictions: dataset the models were trained on")
    query.add_argument("--as-of", type=iso_time, default=None)
    query.add_argument(
        "--classification", help="transfers: e.g. personal (inherited from the asset)"
    )
    query.add_argument("--from", dest="source", help="transfers: EEA, DE,FR, !adequate ...")
    query.add_argument("--to", dest="destination", help="transfers: e.g. '!adequate'")
    query.add_argument("--since", type=iso_time, default=None)
    query.set_defaults(run=cmd_query)

    ev = sub.add_parser("evidence", help="evidence bundle of a model version (JSON or Markdown)")
    ev.add_argument("model_version", help="name:version or model:<name>:<version>")
    shape = ev.add_mutually_exclusive_group()
    shape.add_argument("--markdown", action="store_true", help="a readable report instead of JSON")
    shape.add_argument(
        "--html", action="store_true", help="the report as one HTML page (print it to PDF)"
    )
    ev.set_defaults(run=cmd_evidence)

    sql = sub.add_parser(
        "sql",
        help="run one read-only SELECT against the audit database",
        parents=[fmt],
        description="One SELECT (or WITH ... SELECT) over the audit database's tables; "
        "unqualified names are that database's. Refused: writes, several statements, other "
        "databases and system tables, table functions and functions that reach files, URLs, "
        "other servers or dictionaries. Bounded in time and result size; Ctrl-C cancels.",
    )
    sql.add_argument("query")
    sql.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="time limit (default 60)"
    )
    sql.add_argument(
        "--max-rows", type=int, default=1_000_000, help="result rows limit (default 1000000)"
    )
    sql.set_defaults(run=cmd_sql)

    verify = sub.add_parser(
        "verify",
        help="check the stored audit log: chains, signatures, truncation (read-only)",
        parents=[fmt],
        description="Recomputes every producer stream's hash chain and signatures from the "
        "stored log and judges where each stream ends against its anchors: the producers' "
        "signed checkpoints, earlier `auditline attest` heads and, with --broker, the checkpoints "
        "topic in Kafka. Writes nothing. Exit 0 intact, 1 findings, 4 unknown --producer.",
    )
    verify.add_argument("--producer", help="only this producer service")
    verify.add_argument("--since", type=iso_time, default=None, help="only events from this time")
    verify.add_argument(
        "--broker",
        action="store_true",
        help="also read the checkpoints topic and the stream processors' stream heads from Kafka "
        "(catch deletions in the store that took the stored checkpoints, or a whole producer)",
    )
    verify.add_argument(
        "--require-signature",
        action="store_true",
        help="an unsigned event is a finding (also AUDITLINE_PRODUCER__REQUIRE_SIGNING); with a "
        "keyring or key configured, checkpoints must be signed to count in any case",
    )
    verify.add_argument(
        "--settle",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="checkpoints younger than this are not yet held against the store (default 60)",
    )
    verify.set_defaults(run=cmd_verify)

    attest = sub.add_parser(
        "attest",
        help="verify, then store the intact heads as signed anchors (needs write access)",
        parents=[fmt],
        description="Stores each intact stream's head in chain_checkpoints, HMAC-signed with "
        "AUDITLINE_SINK__CHECKPOINT_KEY; later `auditline verify` runs hold the store to them.",
    )
    attest.set_defaults(run=cmd_attest)
