"""The ``auditline`` command line."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from auditline.errors import AuditlineError, ConfigError, NotFoundError, UnavailableError
from auditline.logs import configure as configure_logging

# Exit codes of every command (docs/store.md, `auditline --help`)
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_FOUND, EXIT_INTERRUPTED = (
    0, 1, 2, 3, 4, 130,
)  # fmt: skip
EXIT_CODES_HELP = (
    "exit codes: 0 ok; 1 findings (violations, drift, model quality, integrity); 2 usage, "
    "input or settings error; 3 a broker or store unavailable; 4 an id, producer or node not "
    "found; 130 interrupted"
)


def _cmd_demo(args: argparse.Namespace) -> int:
    from auditline.demo import DemoKeys
    from auditline.settings import data_dir

    keys = DemoKeys.make(data_dir() / "demo")
    try:
        from auditline.demoplatform.run import run_platform
        from auditline.sinks.demo import SinkStore, platform_view
    except ImportError as exc:
        print(f"auditline demo needs the demo extra ({exc.name} is missing): "
              "pip install 'auditline[demo]'", file=sys.stderr)  # fmt: skip
        return 2
    if args.kafka:
        if not _installed("faust"):
            print("auditline demo --kafka runs auditline worker: pip install "
                  "'auditline[streams]'", file=sys.stderr)  # fmt: skip
            return 2
        from auditline.demoplatform.kafka import run_kafka

        outcome = run_kafka(keys, args.kafka, sys.stdout, SinkStore)
        return _demo_verdict(outcome.ok, outcome.tampered, outcome.missing)
    run = run_platform(keys, sys.stdout)
    ok = platform_view(run.broker, keys.keyring, run.tampered_stream, sys.stdout)
    ok = ok and run.delivered and {f.stream for f in run.fired.findings} == {run.tampered_stream}
    return _demo_verdict(ok, run.tampered_stream)


def _demo_verdict(ok: bool, tampered: str, missing: Sequence[str] = ()) -> int:
    verdict = (
        f"every stream intact except {tampered}, whose tampering was detected"
        if ok
        else "UNEXPECTED: " + ("; ".join(missing) if missing else "see above")
    )
    print(f"\nround trip, hash chains and signatures: {verdict}", file=sys.stdout)
    return EXIT_OK if ok else EXIT_FINDINGS


def _cmd_schemas(args: argparse.Namespace) -> int:
    from auditline.catalogue import Catalogue

    rows = [
        {
            "model": entry.model.__name__,
            "schema": entry.schema.name,
            "topic": entry.topic,
            "key": entry.key.__name__,
            "fingerprint": entry.schema.fingerprint.hex(),
        }
        for entry in Catalogue(args.topic_prefix)
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    for row in rows:
        print(f"{row['model']:<16} {row['topic']:<28} {row['fingerprint']}  {row['schema']}")
    return 0


def _cmd_config(_: argparse.Namespace) -> int:
    from auditline.settings import load_settings, redacted_dsn

    shown = json.loads(load_settings().model_dump_json())  # secrets: SecretStr prints ***
    shown["clickhouse"]["dsn"] = redacted_dsn(shown["clickhouse"]["dsn"])
    print(json.dumps(shown, indent=2))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from auditline.check import UnusableInput, check, fails
    from auditline.policy.engine import PolicyEngine
    from auditline.policy.model import load_policy

    if args.transfer is not None:
        return _cmd_preflight(args)
    if args.events is None:
        raise ConfigError("give a file of JSON events (or - for standard input), or --transfer")
    engine = PolicyEngine(load_policy(args.policy))
    stream = sys.stdin if args.events == "-" else _open(args.events)
    failing = 0
    try:
        for decision in check(stream, engine):
            print(json.dumps(decision.to_json()), flush=True)
            failing += fails(decision, args.fail_on)
    except UnusableInput as exc:
        for problem in exc.problems:
            print(f"auditline check: {args.events}: {problem}", file=sys.stderr)
        lines = len({p.line for p in exc.problems})
        print(
            f"auditline check: {args.events}: {_count(len(exc.problems), 'problem')} on "
            f"{_count(lines, 'line')}, nothing judged: fix them and run again",
            file=sys.stderr,
        )
        return 2
    except UnicodeDecodeError:
        return _not_text("check", args.events)
    return 1 if failing else 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _cmd_preflight(args: argparse.Namespace) -> int:
    """``auditline check --transfer ASSET --to WHERE ...``: judged before the move."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from auditline.check import fails
    from auditline.events import GIVEN, Party, TransferMechanism
    from auditline.policy.preflight import Proposal

    if not (args.to and args.purpose):
        raise ConfigError("--transfer needs --to (a country or PROVIDER:REGION) and --purpose")
    if args.events is not None:
        raise ConfigError("give either a file of events or --transfer, not both")
    try:
        from auditline.sinks.preflight import check_transfer
    except ImportError:
        return _needs_extra(argparse.Namespace(command="check --transfer", extra="store"))
    try:
        proposal = Proposal(
            asset_id=args.transfer,
            destination=_place(args.to, "--to"),
            source=_place(args.source, "--from") if args.source else None,
            purpose=args.purpose,
            on=_instant(args.on) if args.on else datetime.now(UTC),
            mechanism=TransferMechanism.model_validate(_json_arg(args.mechanism, "--mechanism"))
            if args.mechanism
            else None,
            exporter=Party.model_validate(_json_arg(args.exporter, "--exporter"), context=GIVEN)
            if args.exporter
            else None,
            importer=Party.model_validate(_json_arg(args.importer, "--importer"), context=GIVEN)
            if args.importer
            else None,
            records=args.records,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ConfigError(f"{exc.title} {where}: {error['msg']}") from exc
    from auditline.settings import load_settings

    answer = check_transfer(load_settings(), proposal)
    for decision in answer.decisions:
        print(json.dumps(decision.to_json()), flush=True)
    verdict = (
        "may go"
        if not answer.decisions
        else ("refused" if not answer.allowed else "may go, with the decisions above")
    )
    print(
        f"auditline check: {proposal.asset_id} to {proposal.destination.country} on "
        f"{proposal.on.isoformat()}: {verdict} ({answer.replayed} upstream events replayed)",
        file=sys.stderr,
    )
    return 1 if any(fails(d, args.fail_on) for d in answer.decisions) else 0


def _place(text: str, option: str) -> Any:
    """``DE`` (a country) or ``PROVIDER:REGION`` (``aws:eu-central-1``) as a Location."""
    from pydantic import ValidationError

    from auditline.events import GIVEN, Location

    provider, _, region = text.partition(":")
    fields = {"provider": provider, "region": region} if region else {"country": text.upper()}
    try:
        return Location.model_validate(fields, context=GIVEN)
    except ValidationError as exc:
        raise ConfigError(f"{option} {text}: {exc.errors()[0]['msg']}") from exc


def _instant(text: str) -> Any:
    """An ISO date-time (naive: UTC), or a day: its last millisecond (UTC), so that what was
    declared that day counts."""
    from datetime import UTC, datetime, time

    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--on {text}: not an ISO date or date-time (2026-12-01)") from exc
    if len(text) == 10:  # a day
        value = datetime.combine(value.date(), time(23, 59, 59, 999000))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _json_arg(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{option}: not JSON ({exc.msg} at column {exc.colno})") from exc


def _cmd_drift(args: argparse.Namespace) -> int:
    try:
        from auditline.drift.detector import DriftDetector
        from auditline.drift.explain import described
        from auditline.drift.offline import (
            Report,
            drift,
            load_drift_settings,
            load_reference,
            with_window,
        )
        from auditline.output import json_value
    except ImportError:
        return _needs_extra(argparse.Namespace(command="drift", extra="drift"))
    from auditline.check import BadInput

    try:
        reference = load_reference(_open(args.reference).read())
    except BadInput as exc:
        print(f"auditline drift: {args.reference}: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        return _not_text("drift", args.reference)
    config = load_drift_settings(args.config).for_model(reference.model_name)
    detector = DriftDetector(reference, with_window(config, args.window))
    stream = sys.stdin if args.predictions == "-" else _open(args.predictions)
    report = Report()
    try:
        for alert in drift(stream, detector, report):
            print(json.dumps(json_value(described(alert))), flush=True)
    except BadInput as exc:
        print(f"auditline drift: {args.predictions}: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        return _not_text("drift", args.predictions)
    for line in report.lines(detector):
        print(f"auditline drift: {line}", file=sys.stderr)
    if not report.judged:
        raise ConfigError(
            f"no prediction of {reference.model_name}/{reference.model_version} (the reference's "
            "model version) in the input: give the predictions of that version"
        )
    return 1 if detector.open_episodes() else 0


def _cmd_performance(args: argparse.Namespace) -> int:
    try:
        from auditline.output import json_value
        from auditline.performance.config import load_performance_settings
        from auditline.performance.degradation import BaselineError
        from auditline.performance.detector import PerformanceDetector
        from auditline.performance.offline import Report, load_baseline, performance
    except ImportError:
        return _needs_extra(argparse.Namespace(command="performance", extra="drift"))
    from pathlib import Path

    from auditline.check import BadInput

    try:
        baseline = load_baseline(_open(args.training_run).read())
    except (BadInput, BaselineError) as exc:
        print(f"auditline performance: {args.training_run}: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        return _not_text("performance", args.training_run)
    settings = load_performance_settings(None if args.config is None else Path(args.config))
    detector = PerformanceDetector(baseline, settings.for_model(baseline.model_name))
    stream = sys.stdin if args.events == "-" else _open(args.events)
    report = Report()
    try:
        for line in performance(stream, detector, report):
            print(json.dumps(json_value(line)), flush=True)
    except BadInput as exc:
        print(f"auditline performance: {args.events}: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        return _not_text("performance", args.events)
    for text in report.lines(detector):
        print(f"auditline performance: {text}", file=sys.stderr)
    if not report.predictions:
        raise ConfigError(
            f"no prediction of {baseline.model_name}/{baseline.model_version} (the training "
            "run's model version) in the input: give the predictions of that version and "
            "their outcomes"
        )
    return 1 if detector.open_episodes() else 0


def _after_global_options(argv: list[str]) -> int:
    """Where the command starts: after ``--log-level X`` / ``--log-format X`` given before it."""
    i = 0
    while i < len(argv):
        if argv[i] in ("--log-level", "--log-format"):
            i += 2
        elif argv[i].startswith(("--log-level=", "--log-format=")):
            i += 1
        else:
            break
    return i


def _drift_reference_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditline drift reference",
        description="A drift reference from a training sample: prints a completed TrainingRun "
        "(JSON) with a profile of every column, for auditline drift --reference.",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("sample", help="CSV (header line) or Parquet file of training rows")
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--version", required=True, help="model version")
    parser.add_argument("--prediction", default=None, help="column of the model's score or label")
    parser.add_argument(
        "--categorical", action="append", default=[], help="a column to profile as categories"
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="warning",
        help=argparse.SUPPRESS,
    )  # fmt: skip
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.set_defaults(run=_cmd_drift_reference)
    return parser


def _cmd_drift_reference(args: argparse.Namespace) -> int:
    from pathlib import Path

    from auditline.drift.sample import read_columns, reference_run

    path = Path(args.sample)
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist: give a CSV or Parquet training sample")
    run = reference_run(
        read_columns(path), model=args.model, version=args.version, prediction=args.prediction,
        categorical=args.categorical, source=str(path),
    )  # fmt: skip
    print(json.dumps(run))
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    """A new Ed25519 key pair: the private key for the producer, the public key for the keyring."""
    from dataclasses import replace
    from pathlib import Path

    from auditline.integrity.keyring import read_keyring, write_keyring
    from auditline.integrity.signing import Ed25519Signer

    private = Path(args.private_key or f"{args.key_id}.pem")
    keyring = Path(args.keyring)
    if private.exists():
        raise ConfigError(f"{private} exists: choose another --private-key, never overwrite a key")
    keys = read_keyring(keyring) if keyring.exists() else {}
    if args.key_id in keys:
        raise ConfigError(f"{keyring} already has key id {args.key_id}: rotate to a new key id")
    signer = Ed25519Signer.generate(args.key_id)
    public = replace(signer.public_key, services=frozenset(args.service or ()))
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(signer.private_pem())
        write_keyring(keyring, {**keys, args.key_id: public})
    except OSError as exc:
        raise ConfigError(f"cannot write the key files: {exc.strerror}: {exc.filename}") from exc
    print(f"private key {private} (mode 0600): AUDITLINE_PRODUCER__SIGNING_KEY_FILE={private} "
          f"AUDITLINE_PRODUCER__SIGNING_KEY_ID={args.key_id}")  # fmt: skip
    print(f"public key added to {keyring}: AUDITLINE_KEYRING_PATH={keyring} for verifiers")
    return 0


def _not_text(command: str, path: str) -> int:
    print(
        f"auditline {command}: {path}: not UTF-8 text: give a file of JSON lines (docs/policy.md)",
        file=sys.stderr,
    )
    return EXIT_USAGE


def _open(path: str) -> Any:
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditline",
        description="Audit and lineage streaming for AI platforms.",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="warning",
        help="what auditline and librdkafka log to standard error (default warning)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log lines as text, or as one JSON object a line (time, level, logger, message)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the end-to-end demo on the embedded default (or through Kafka)",
        description="A day of a multi-region ML platform: its teams emit through the producer "
        "SDK, violations of several regimes, drift and a tampered stream are detected as they "
        "happen, then the auditor's view of the stored log and the commands to ask it again. "
        "By default everything runs in this process (in-process transport, embedded detectors, "
        "the embedded store). With --kafka the same day goes through that broker: topics "
        "named auditline-demo-<UTC time>.*, created up front; auditline worker judges and "
        "publishes the alerts, auditline sink stores every topic in an embedded store of the "
        "run's own, auditline alerts tail prints the alerts as they fire, each a child process "
        "logging under the run's folder in the per-user data directory. Exit 0 when every "
        "expected finding is there, 1 when not, 3 when the broker (or a process) is "
        "unavailable.",
    )
    demo.add_argument(
        "--kafka", metavar="BOOTSTRAP", default=None,
        help="run through the Kafka broker at BOOTSTRAP (host:port) with the worker, the sink "
        "and the alert service as processes",
    )  # fmt: skip
    demo.set_defaults(run=_cmd_demo)
    schemas = sub.add_parser("schemas", help="list event models, topics and schema fingerprints")
    schemas.add_argument("--topic-prefix", default="auditline", help="topic prefix to show")
    schemas.add_argument("--json", action="store_true", help="one JSON object per line")
    schemas.set_defaults(run=_cmd_schemas)
    config = sub.add_parser(
        "config",
        help="print the effective settings (secrets masked)",
        description="Settings come from AUDITLINE_* variables; nested keys use '__', e.g. "
        "AUDITLINE_KAFKA__BOOTSTRAP_SERVERS, AUDITLINE_SCHEMA_REGISTRY__URL, "
        "AUDITLINE_CLICKHOUSE__DSN, AUDITLINE_POLICY_PATH, AUDITLINE_TOPIC_PREFIX. "
        "Unknown AUDITLINE_* variables are errors.",
    )
    config.set_defaults(run=_cmd_config)
    check = sub.add_parser(
        "check",
        help="judge a file of JSON events against a policy (exit 0 nothing at or above "
        "--fail-on, 1 something is, 2 bad input)",
        description="Events as JSON lines (see docs/policy.md), processed in file order; prints "
        "one JSON line per decision that is not a plain allow. The whole file is validated "
        "first: with any unusable line, every problem is reported on standard error, nothing "
        "is judged and the exit status is 2.",
    )
    check.add_argument(
        "events", nargs="?", default=None, help="JSON-lines file, or - for standard input"
    )
    check.add_argument("--policy", default=None, help="policy YAML (default: the shipped pack)")
    check.add_argument(
        "--fail-on",
        default="low",
        choices=["info", "low", "medium", "high", "critical"],
        help="exit 1 when a decision is at or above this severity (default low: informational "
        "decisions such as an adequacy with obligations alone exit 0)",
    )
    flight = check.add_argument_group(
        "pre-flight (store extra)",
        "--transfer ASSET judges a transfer before it happens: the asset's lineage is read from "
        "the store (AUDITLINE_CLICKHOUSE__DSN) and replayed through the policy engine, then the "
        "proposed movement is judged; nothing is written. Exit 0: nothing at or above "
        "--fail-on (the transfer may go), 1: something is, 4: the asset is not in the store.",
    )
    flight.add_argument("--transfer", metavar="ASSET", help="the asset id to move")
    flight.add_argument("--to", help="destination: a country (US) or PROVIDER:REGION")
    flight.add_argument("--from", dest="source", help="source (default: where the asset is)")
    flight.add_argument("--purpose", help="purpose of the transfer")
    flight.add_argument("--mechanism", help='transfer mechanism as JSON ({"kind": "scc", ...})')
    flight.add_argument("--exporter", help="exporting party as JSON")
    flight.add_argument("--importer", help="importing party as JSON (certifications for DPF)")
    flight.add_argument("--on", help="day or ISO date-time of the transfer (default: now)")
    flight.add_argument("--records", type=int, default=0, help="records to move")
    check.set_defaults(run=_cmd_check)
    drift = sub.add_parser(
        "drift",
        help="drift of predictions against their training run (exit 0 none open, 1 open, 2 bad "
        "input or no prediction of the reference's version)",
        description="Predictions (Prediction / PredictionBatch JSON lines, see docs/drift.md) "
        "are counted in event-time windows and compared with the reference profiles of the "
        "training run, and checked for data quality (missing values, values outside the "
        "training range, values of the other kind); prints one JSON line per alert opened or "
        "closed, its kind DriftAlert or DataQualityAlert (`auditline drift "
        "reference SAMPLE --model M --version V` makes the reference from a CSV/Parquet "
        "training sample). Standard error says "
        "what was skipped (other versions), late (after its window was judged) or never "
        "judged (reference features absent from the predictions).",
    )
    drift.add_argument("predictions", help="JSON-lines file, or - for standard input")
    drift.add_argument(
        "--reference", required=True, help="the completed TrainingRun as JSON (its profiles)"
    )
    drift.add_argument("--config", default=None, help="drift thresholds YAML (docs/drift.md)")
    drift.add_argument(
        "--window", type=int, default=None, help="window size in seconds (default 3600)"
    )
    drift.set_defaults(run=_cmd_drift)
    performance = sub.add_parser(
        "performance",
        help="model quality of predictions joined to their outcomes, against their training "
        "run's metrics (exit 0 none open, 1 open, 2 bad input or no prediction of the run's "
        "version)",
        description="Predictions and outcomes (Prediction / PredictionBatch / Outcome JSON "
        "lines, see docs/performance.md), in file order: each outcome is joined to the "
        "prediction it names within the horizon, the pairs counted in event-time windows of "
        "the prediction and judged against the metrics of the completed training run; every "
        "prediction of the run's version is joined, whatever join_from says. Prints one JSON "
        "line per judged window (kind window: metrics, coverage, label delay) and one per "
        "PerformanceAlert opened or closed (kind performance), in the order they happened. "
        "Standard error says what was skipped (other versions) and what the join counted "
        "(joined, repeated, beyond the horizon, unmatched, dropped, late).",
    )
    performance.add_argument("events", help="JSON-lines file, or - for standard input")
    performance.add_argument(
        "--training-run", required=True,
        help="the completed TrainingRun as JSON (its metrics are the baseline)",
    )  # fmt: skip
    performance.add_argument(
        "--config", default=None, help="model-quality settings YAML (docs/performance.md)"
    )
    performance.set_defaults(run=_cmd_performance)
    keys = sub.add_parser(
        "keys",
        help="signing keys: `keys generate` makes an Ed25519 pair and adds it to a keyring",
        description="Producers sign with the private key (AUDITLINE_PRODUCER__SIGNING_KEY_FILE); "
        "workers and auditors verify with the keyring of public keys (AUDITLINE_KEYRING_PATH) "
        "and cannot sign. Rotate by generating a new key id into the same keyring.",
    )
    keys.add_argument("action", choices=["generate"])
    keys.add_argument("--key-id", required=True, help="the id events will name, e.g. payments-2026")
    keys.add_argument("--keyring", default="keyring.json", help="keyring JSON to add the key to")
    keys.add_argument("--private-key", default=None, help="private key file (default KEY_ID.pem)")
    keys.add_argument(
        "--service",
        action="append",
        help="producer service the key may sign for (repeat; default: any)",
    )
    keys.set_defaults(run=_cmd_keys)
    from auditline.alerting.cli import register as register_alerts

    register_alerts(sub)
    _register_extra_commands(sub)
    return parser


# Commands that live with an extra: (module with ``register(sub)``, the module the extra brings,
# the extra, the commands to name when it is missing)
_EXTRA_COMMANDS = (
    ("auditline.sinks.cli", "clickhouse_connect", "store",
     ("migrate", "sink", "lineage", "query", "evidence", "sql", "verify", "attest")),
    ("auditline.streams.cli", "faust", "streams", ("worker",)),
    ("auditline.openlineage.cli", "jsonschema_rs", "openlineage", ("openlineage",)),
    ("auditline.sinks.console.cli", "aiohttp", "console", ("console",)),
)  # fmt: skip


def _register_extra_commands(sub: Any) -> None:
    """Commands of installed extras; placeholders that name the extra for missing ones."""
    for module, needs, extra, commands in _EXTRA_COMMANDS:
        register = None
        if _installed(needs):
            try:
                register = importlib.import_module(module).register
            except ImportError:
                register = None
        if register is not None:
            register(sub)
            continue
        for command in commands:
            missing = sub.add_parser(command, help=f"(needs: pip install 'auditline[{extra}]')")
            missing.set_defaults(run=_needs_extra, extra=extra)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # e.g. already imported without a spec
        return sys.modules.get(module) is not None


def _needs_extra(args: argparse.Namespace) -> int:
    print(
        f"auditline: {args.command} needs: pip install 'auditline[{args.extra}]'", file=sys.stderr
    )
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    command = _after_global_options(given)
    if given[command : command + 2] == ["drift", "reference"]:  # beside drift's positional input
        args = _drift_reference_parser().parse_args(given[:command] + given[command + 2 :])
    else:
        args = build_parser().parse_args(given)
    configure_logging(args.log_level.upper(), args.log_format)
    try:
        return int(args.run(args))
    except NotFoundError as exc:
        return _fail(exc, EXIT_NOT_FOUND)
    except UnavailableError as exc:
        return _fail(exc, EXIT_UNAVAILABLE)
    except AuditlineError as exc:
        return _fail(exc, EXIT_USAGE)
    except KeyboardInterrupt:
        print("auditline: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of the output went away (`| head`): nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # (Python's advice: no error at exit's flush)
        return 0


def _fail(exc: AuditlineError, code: int) -> int:
    message = " ".join(str(exc).split())  # one line, whatever the driver said
    print(f"auditline: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
