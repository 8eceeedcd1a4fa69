"""Logs for people and for collectors: JSON lines on request; other libraries' noise hidden below
ERROR unless debug or info is asked for."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging, sys
from auditline.logs import configure
configure(sys.argv[1], sys.argv[2])
logging.getLogger("auditline.sink").warning("lag %d", 5)
logging.getLogger("urllib3.connectionpool").warning("Retrying ...")
logging.getLogger("rdkafka").error("broker down")
"""


def run(level: str, form: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, level, form], capture_output=True, text=True, check=True
    )
    return done.stderr.splitlines()


def test_json_lines_and_quiet_libraries() -> None:
    lines = [json.loads(line) for line in run("WARNING", "json")]
    assert [(r["level"], r["logger"], r["message"]) for r in lines] == [
        ("warning", "auditline.sink", "lag 5"),
        ("error", "rdkafka", "broker down"),
    ]
    assert lines[0]["time"].endswith("+00:00")


def test_text_and_verbose() -> None:
    assert run("WARNING", "text")[0] == "auditline: WARNING auditline.sink: lag 5"
    assert len(run("INFO", "text")) == 3  # info: every library's records
