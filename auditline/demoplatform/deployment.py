"""The Kafka demo's deployment: its names, and the worker, the sink and the alert service.

``Layout``: one run's topic prefix and folder (the sink's store, the spools, the logs and the
worker's working directory), named for the time it started so that reruns on one broker never
mix. ``Deployment`` starts ``auditline worker``, ``auditline sink`` and ``auditline alerts
tail`` as children (``processes.Child``) with the demo's settings, and stops them together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from auditline.demo import DEMO_KEY_ID, DemoKeys
from auditline.demoplatform.processes import Child, Lines
from auditline.demoplatform.serving import QUALITY
from auditline.demoplatform.story import WORKER
from auditline.settings import ClickHouseSettings, data_dir

WORKER_READY_S, SINK_READY_S = 120.0, 60.0
KEPT_ENV = ("AUDITLINE_KAFKA__", "AUDITLINE_SCHEMA_REGISTRY__")
"""The user's settings the demo's processes keep: how to reach the broker and the registry."""


@dataclass(frozen=True)
class Layout:
    prefix: str
    folder: Path

    @classmethod
    def new(cls) -> Layout:
        prefix = f"auditline-demo-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        folder = data_dir() / "demo" / "kafka" / prefix
        for part in ("logs", "spool", "worker"):
            (folder / part).mkdir(parents=True, exist_ok=True)
        return cls(prefix, folder)

    @property
    def store(self) -> ClickHouseSettings:
        return ClickHouseSettings(dsn=f"chdb://{self.folder / 'store'}", database="auditline_demo")

    def log(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"


def child_env(layout: Layout, bootstrap: str, keys: DemoKeys) -> dict[str, str]:
    """What every child reads: the broker, the prefix, the keyring, the store, its spool."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AUDITLINE_") or k.startswith(KEPT_ENV)}  # fmt: skip
    return env | {
        "AUDITLINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "AUDITLINE_TOPIC_PREFIX": layout.prefix,
        "AUDITLINE_KEYRING_PATH": str(keys.keyring),
        "AUDITLINE_CLICKHOUSE__DSN": layout.store.dsn,
        "AUDITLINE_CLICKHOUSE__DATABASE": layout.store.database,
        "AUDITLINE_SPOOL__PATH": str(layout.folder / "spool"), "AUDITLINE_SPOOL__FSYNC": "never",
    }  # fmt: skip


def worker_env(env: dict[str, str], keys: DemoKeys) -> dict[str, str]:
    """The worker signs its alerts with the demo's key, as the embedded detectors do (its alert
    streams end on a final checkpoint when it stops)."""
    producer = {
        "SERVICE": WORKER.service, "INSTANCE": WORKER.instance, "COUNTRY": WORKER.country,
        "SIGNING_KEY_FILE": str(keys.private), "SIGNING_KEY_ID": DEMO_KEY_ID,
        "REQUIRE_SIGNING": "true",
    }  # fmt: skip
    return env | {f"AUDITLINE_PRODUCER__{k}": v for k, v in producer.items()}


class Deployment:
    """The worker, the sink and the alert service (whose lines go to ``lines``), started
    together; leaving the ``with`` block stops them all."""

    def __init__(self, layout: Layout, keys: DemoKeys, bootstrap: str, lines: Lines) -> None:
        env = child_env(layout, bootstrap, keys)
        sink_env = env | {"AUDITLINE_SINK__GROUP_ID": f"{layout.prefix}-sink",
                          "AUDITLINE_SINK__BATCH_MAX_WAIT_MS": "200"}  # fmt: skip
        self.children: dict[str, Child] = {}
        quality = layout.folder / "performance.yaml"  # the embedded run's model-quality settings
        quality.parent.mkdir(parents=True, exist_ok=True)
        quality.write_text(yaml.safe_dump(QUALITY.model_dump(mode="json")), encoding="utf-8")
        self.children["worker"] = Child(
            "worker", ["worker"], log=layout.log("worker"),
            env=worker_env(env, keys) | {"AUDITLINE_PERFORMANCE_PATH": str(quality)},
            cwd=layout.folder / "worker",  # faust keeps its data directory in the working one
            ready="worker: ready:",
        )  # fmt: skip
        self.children["sink"] = Child(
            "sink", ["sink"], env=sink_env, cwd=layout.folder, log=layout.log("sink"),
            ready="sink: ready:",
        )  # fmt: skip
        self.children["alert service"] = Child(
            "alert service", ["alerts", "tail", "--from-beginning", "--plain"], env=env,
            cwd=layout.folder, log=layout.log("alerts-tail"), forward=lines,
        )  # fmt: skip

    def log(self, name: str) -> Path:
        return self.children[name].log

    def wait_ready(self) -> tuple[float, float]:
        """Seconds the worker and the sink took to be ready."""
        worker = self.children["worker"].wait_ready(WORKER_READY_S)
        return worker, self.children["sink"].wait_ready(SINK_READY_S)

    def check(self) -> None:
        """An ``UnavailableError`` naming the log of a child that has exited."""
        for child in self.children.values():
            child.check()

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.children):
            self.children[name].stop()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
