"""The demo's store stage: the emitted events and alerts into the embedded engine, then the
auditor's commands, each printed so that it can be run again as printed."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import IO, Any

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demoplatform.show import StoredAlerts
from auditline.integrity.keyring import read_keyring
from auditline.output import render
from auditline.producer.memory import InProcessBroker
from auditline.settings import ClickHouseSettings, load_settings

from .evidence import evidence
from .migrate import migrate
from .queries import Provenance
from .rows import Located
from .store import Store, connect
from .verification import VerifyOptions, verify_log
from .writer import StoreWriter

DEMO_DATABASE = "auditline_demo"


def _load(store: Store, broker: InProcessBroker) -> tuple[int, int]:
    store.command(f"DROP DATABASE IF EXISTS {DEMO_DATABASE}")
    migrate(store)
    codec = SingleObjectCodec(Catalogue())
    located = [
        Located(codec.decode(m.value), topic, 0, m.offset)
        for topic, messages in broker.topics.items()
        for m in messages
    ]
    stored, _ = StoreWriter(store).write(located)
    return stored, len(located)


def demo_store_settings(dsn: str | None = None) -> ClickHouseSettings:
    """The demo's database in the default store (or in ``dsn``)."""
    settings = load_settings().clickhouse
    return settings.model_copy(update={"database": DEMO_DATABASE, **({"dsn": dsn} if dsn else {})})


def platform_view(broker: InProcessBroker, keyring: Path, tampered: str, out: IO[str]) -> bool:
    """The platform run into the embedded store, then the auditor's view of it: lineage,
    transfers, predictions, the served model's evidence, and a verification of the stored log
    that must find the tampered stream, and only it. True when all of that holds."""
    settings = demo_store_settings()
    store = connect(settings)
    try:
        stored, expected = _load(store, broker)
        print(f"\nstored {stored} events in {settings.dsn} (database {DEMO_DATABASE})", file=out)
        ok = auditor_view(store, keyring, tampered, out) and stored == expected
    finally:
        store.close()
    platform_follow_ups(settings, keyring, out)
    return ok


def auditor_view(store: Store, keyring: Path, tampered: str, out: IO[str]) -> bool:
    """The auditor's questions of a store holding the platform's day (however it got there);
    True when verifying the stored log finds the tampered stream, and only it."""
    print("\nThe auditor's view:", file=out)
    provenance = Provenance(store)
    _platform_lineage(provenance, out)
    return _platform_verify(store, provenance, keyring, tampered, out)


def platform_follow_ups(
    settings: ClickHouseSettings,
    keyring: Path,
    out: IO[str],
    env: dict[str, str] | None = None,
    commands: tuple[str, ...] = (),
) -> None:
    """The auditor's commands to run again (``commands`` after them), with the environment that
    points them at the store (``env`` added to it), then the console's."""
    _follow_ups(settings, keyring, out, PLATFORM_FOLLOW_UPS + commands, env)
    print("\nOpen the console on the result (same environment; read-only, in your browser):",
          file=out)  # fmt: skip
    print(f"  {CONSOLE}", file=out)


class SinkStore:
    """The Kafka demo's store: ``auditline sink`` fills and owns it, this reads through the sink
    (``store.connect``) while it runs, and opens it itself once it has stopped."""

    def __init__(self, settings: ClickHouseSettings, keyring: Path) -> None:
        self.settings = settings
        self.keyring = keyring
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = connect(self.settings)
        return self._store

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.store.rows(sql.replace("$db", self.settings.database))[1]

    def stored(self) -> int:
        """Events in the audit log (alerts and checkpoints included)."""
        return int(self._rows("SELECT uniqExact(event_id) FROM $db.audit_log")[0][0])

    def alerts(self) -> StoredAlerts:
        rules = self._rows(
            "SELECT rule_id, decision, uniqExact(violation_id) FROM $db.violations "
            "WHERE decision != 'allow' GROUP BY rule_id, decision ORDER BY rule_id, decision"
        )
        drift = self._rows(
            "SELECT DISTINCT alert_id, state, severity, feature, window_end FROM $db.drift_alerts"
        )
        streams = self._rows("SELECT DISTINCT stream FROM $db.integrity_alerts ORDER BY stream")
        keys = ("alert_id", "state", "severity", "feature", "window_end")
        return StoredAlerts(
            tuple((str(r), str(d), int(n)) for r, d, n in rules),
            tuple(dict(zip(keys, row, strict=True)) for row in drift),
            tuple(str(s) for (s,) in streams),
        )

    def view(self, tampered: str, out: IO[str]) -> bool:
        print(f"\nthe sink stored {self.stored()} events in {self.settings.dsn} (database "
              f"{self.settings.database})", file=out)  # fmt: skip
        return auditor_view(self.store, self.keyring, tampered, out)

    def follow_ups(self, out: IO[str], env: dict[str, str], commands: tuple[str, ...]) -> None:
        platform_follow_ups(self.settings, self.keyring, out, env, commands)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _platform_lineage(provenance: Provenance, out: IO[str]) -> None:
    print(f"\n$ auditline lineage upstream {PLATFORM_MODEL}", file=out)
    hits = provenance.upstream(PLATFORM_MODEL)
    print(render(["node", "depth", "edge", "via"],
                 [(h.node, h.depth, h.edge_type, h.via) for h in hits]), file=out)  # fmt: skip
    print(f"\n$ {_LEAVING_EEA}", file=out)
    columns, rows = provenance.transfers(classification="personal", source="EEA",
                                         destination="!EEA")  # fmt: skip
    keep = ["event_time", "asset_id", "source_country", "destination_country", "mechanism"]
    print(render(keep, [[r[columns.index(c)] for c in keep] for r in rows]), file=out)
    print("\n$ auditline query predictions --derived-from ds:customers", file=out)
    print(render(*provenance.predictions_derived_from("ds:customers")), file=out)
    print("\n$ auditline lineage downstream ds:upi-payments", file=out)
    hits = provenance.downstream("ds:upi-payments")
    print(render(["node", "depth", "edge", "via"],
                 [(h.node, h.depth, h.edge_type, h.via) for h in hits]), file=out)  # fmt: skip


def _platform_verify(
    store: Store, provenance: Provenance, keyring: Path, tampered: str, out: IO[str]
) -> bool:
    keys = read_keyring(keyring)
    bundle = evidence(provenance, "churn:4", VerifyOptions(keys, True))
    print("\n$ auditline evidence churn:4 --markdown   (its violations and drift alerts)", file=out)
    columns = ["rule_id", "decision", "hop", "message"]
    print(render(columns, [[v[c] for c in columns] for v in bundle["violations"]]), file=out)
    columns = ["state", "severity", "feature", "statistic", "value", "window_start"]
    drift = [
        [round(a[c], 2) if c == "value" else a.get(c) for c in columns]
        for a in bundle["drift_alerts"]
    ]
    print(render(columns, drift), file=out)
    report = verify_log(store, keys=keys, require_signature=True)
    broken = sorted({f.stream for f in report.findings})
    print(f"\n$ auditline verify\nverified {report.events} events in {report.streams} streams "
          f"against {report.anchors} anchors: "
          f"{'intact' if report.ok else 'BROKEN: ' + ', '.join(broken)}", file=out)  # fmt: skip
    for finding in report.findings:
        print(f"  {finding.kind}: {finding.stream} sequence {finding.sequence}: {finding.detail}",
              file=out)  # fmt: skip
    return broken == [tampered]


PLATFORM_MODEL = "model:churn:4"
CONSOLE = "auditline console   (then open http://127.0.0.1:8765)"
_LEAVING_EEA = "auditline query transfers --classification personal --from EEA --to '!EEA'"
PLATFORM_FOLLOW_UPS = (
    f"auditline lineage upstream {PLATFORM_MODEL}",
    _LEAVING_EEA,
    "auditline query predictions --derived-from ds:customers",
    "auditline lineage downstream ds:upi-payments",
    "auditline evidence churn:4 --markdown",
    "auditline verify",
    'auditline sql "SELECT rule_id, decision, count() AS n FROM violations GROUP BY rule_id, '
    'decision ORDER BY rule_id"',
)


def _follow_ups(
    settings: ClickHouseSettings,
    keyring: Path,
    out: IO[str],
    commands: tuple[str, ...],
    more_env: dict[str, str] | None = None,
) -> None:
    env = {
        "AUDITLINE_CLICKHOUSE__DSN": settings.dsn,
        "AUDITLINE_CLICKHOUSE__DATABASE": settings.database,
        "AUDITLINE_KEYRING_PATH": str(keyring),
        "AUDITLINE_PRODUCER__REQUIRE_SIGNING": "true",
        **(more_env or {}),
    }
    print("\nTry it yourself on the demo's store and keys:", file=out)
    print("  export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()), file=out)
    for command in commands:
        print(f"  {command}", file=out)
