"""``auditline worker``: run the stream processors (a faust worker)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from auditline.settings import load_settings
from auditline.topics import require_broker


def cmd_worker(args: argparse.Namespace) -> int:
    from .app import build_app
    from .runtime import tune_gc

    settings = load_settings()
    require_broker(settings.kafka.client_conf(), settings.kafka.connect_timeout_s)
    app = build_app(settings)
    tune_gc()
    sys.argv = ["auditline worker", "worker", "-l", args.loglevel, "--without-web"]
    app.main()  # runs until SIGTERM / SIGINT
    return 0


def register(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="run the stream processors: policy violations, integrity, dead letters",
        description="Starts a faust-streaming worker over the AUDITLINE_* settings. Run more "
        "workers with the same settings to share the partitions, each with its own "
        "AUDITLINE_PRODUCER__INSTANCE (its alerts' producer; stable across its restarts).",
    )
    worker.add_argument(
        "--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"]
    )
    worker.set_defaults(run=cmd_worker)
