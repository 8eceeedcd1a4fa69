"""``auditline openlineage serve | consume | import``: OpenLineage into the audit."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditline.addresses import port
from auditline.errors import NotFoundError, OpenLineageError
from auditline.openlineage.export_cli import add_export
from auditline.openlineage.ingest import Ingestor, Outcome, array_items
from auditline.openlineage.locations import Inventory, load_inventory
from auditline.openlineage.mapping import MappingConfig, TrainingPattern
from auditline.openlineage.validation import prepare
from auditline.settings import AuditlineSettings, load_settings

SERVICE = "auditline-openlineage"
"""The ingesting service's producer name unless ``AUDITLINE_PRODUCER__SERVICE`` sets one."""
IMPORT_BATCH = 200


def mapping_config(settings: AuditlineSettings) -> MappingConfig:
    ol = settings.openlineage
    inventory = load_inventory(ol.inventory_path) if ol.inventory_path else Inventory()
    return MappingConfig(
        inventory=inventory,
        training=tuple(TrainingPattern(job, model) for job, model in ol.training_jobs.items()),
        default_purpose=ol.default_purpose,
        original_limit=ol.original_limit_bytes,
    )


@contextmanager
def ingestor(settings: AuditlineSettings, role: str) -> Iterator[Ingestor]:
    """An Ingestor over the service's own producer, closed (spool flushed) on leaving. Its
    instance is the producer's with the role appended (``host.serve``, ``host.consume``): the
    roles run side by side on one host, each with its own spool and streams."""
    from auditline.producer import AuditProducer

    given = settings.producer
    update = {"instance": f"{given.instance}.{role}"}
    if "service" not in given.model_fields_set:
        update["service"] = SERVICE
    settings = settings.model_copy(update={"producer": given.model_copy(update=update)})
    config = mapping_config(settings)
    prepare()  # the schemas compiled before the first event, not on it
    with AuditProducer(settings) as producer:
        yield Ingestor(producer, config)


def cmd_serve(args: argparse.Namespace) -> int:
    from auditline.openlineage.server import serve

    settings = load_settings()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    ol = settings.openlineage.model_copy(update=overrides)
    with ingestor(settings, "serve") as service:
        asyncio.run(serve(service, ol))
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    from auditline.openlineage.consumer import OpenLineageConsumer

    settings = load_settings()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with ingestor(settings, "consume") as service:
        consumer = OpenLineageConsumer(settings, service)
        print(f"openlineage: consuming {consumer.topic}", flush=True)
        try:
            stats = consumer.run(stop, idle_exit_s=args.idle_exit)
        finally:
            consumer.close()
    print(
        f"openlineage: {stats.consumed} consumed, {stats.accepted} accepted, "
        f"{stats.dead_lettered} dead-lettered",
        flush=True,
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = load_settings()
    files = list(_files(Path(args.path)))
    accepted = rejected = 0
    with ingestor(settings, "import") as service:
        for batch in _batches(_events(files)):
            raws = [raw for _, raw in batch if isinstance(raw, bytes)]
            outcomes = iter(service.ingest(raws))
            for where, raw in batch:
                outcome = next(outcomes) if isinstance(raw, bytes) else Outcome(False, raw)
                if outcome.accepted:
                    accepted += 1
                    for note in outcome.unplaced:
                        print(f"{where}: location unknown: {note}", file=sys.stderr)
                else:
                    rejected += 1
                    print(f"{where}: rejected: {outcome.reason}", file=sys.stderr)
    print(f"openlineage: {accepted} accepted, {rejected} rejected from {len(files)} file(s)")
    return 1 if rejected else 0


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".ndjson", ".jsonl"))
        if not found:
            raise NotFoundError(f"{path} holds no .json, .ndjson or .jsonl files")
        yield from found
    elif path.is_file():
        yield path
    else:
        raise NotFoundError(f"{path} does not exist: give an export file or a folder of them")


def _events(files: list[Path]) -> Iterator[tuple[str, bytes | str]]:
    """(file:line, event bytes or why the file cannot give any): a file holds one event, a JSON
    array, or one event a line."""
    for file in files:
        try:
            data = file.read_bytes().removeprefix(b"\xef\xbb\xbf")
        except OSError as exc:
            yield str(file), f"cannot be read: {exc.strerror or exc}"
            continue
        if data.lstrip()[:1] == b"[":
            try:
                items = array_items(data, limit=None)
            except OpenLineageError as exc:
                yield str(file), str(exc)
                continue
            yield from ((f"{file}[{i}]", item) for i, item in enumerate(items, 1))
        elif file.suffix == ".json" and _one_event(data):
            yield f"{file}", data
        else:
            lines = enumerate(data.splitlines(), 1)
            yield from ((f"{file}:{n}", line) for n, line in lines if line.strip())


def _one_event(data: bytes) -> bool:
    """A .json file holding one (perhaps pretty-printed) event, not one event a line."""
    if len([line for line in data.splitlines() if line.strip()]) <= 1:
        return False
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def _batches(
    items: Iterator[tuple[str, bytes | str]],
) -> Iterator[list[tuple[str, bytes | str]]]:
    batch: list[tuple[str, bytes | str]] = []
    for item in items:
        batch.append(item)
        if len(batch) == IMPORT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def register(sub: Any) -> None:
    ol = sub.add_parser(
        "openlineage",
        help="OpenLineage events into the audit: HTTP endpoint, Kafka topic, files "
        "(docs/openlineage.md)",
    )
    actions = ol.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve", help="serve POST /api/v1/lineage (point HttpTransport's url here)"
    )
    serve.add_argument("--host", default=None, help="address (default: settings, 127.0.0.1)")
    serve.add_argument("--port", type=port, default=None, help="port (default: settings, 5000)")
    serve.set_defaults(run=cmd_serve)
    consume = actions.add_parser(
        "consume", help="consume the OpenLineage topic (point KafkaTransport's topic here)"
    )
    consume.add_argument(
        "--idle-exit", type=float, default=None, metavar="SECONDS",
        help="stop after this long without events",
    )  # fmt: skip
    consume.set_defaults(run=cmd_consume)
    imports = actions.add_parser(
        "import",
        help="ingest exported events: a .json (one event or an array), .ndjson/.jsonl (one a "
        "line) or a folder of them; exit 1 when any event was rejected (each named on stderr)",
    )
    imports.add_argument("path", help="file or folder")
    imports.set_defaults(run=cmd_import)
    add_export(actions)
