"""`auditline demo` as a new user runs it (issue 11 item 9): it ends intact, and every follow-up
command it prints works as printed, against the demo's own store and keys."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path


def test_the_demo_and_its_printed_follow_ups(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")}
    env |= {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    cli = [sys.executable, "-m", "auditline.cli"]
    demo = subprocess.run(
        [*cli, "demo"], check=False, env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout
    assert "stored 16 events" in out  # 8 events, 6 violations, 2 final checkpoints
    assert "verified 16 events in 8 streams against 8 anchors: intact" in out
    assert out.rstrip().endswith("round trip, hash chains and signatures: intact")
    assert (tmp_path / "data" / "auditline" / "clickhouse").is_dir()  # the per-user default
    lines = out.split("Try it yourself on the demo's store and keys:\n", 1)[1].splitlines()
    export = lines[0].strip().removeprefix("export ")
    env |= dict(pair.split("=", 1) for pair in shlex.split(export))
    commands = [line.strip() for line in lines[1:] if line.startswith("  auditline ")]
    assert len(commands) == 6
    outputs = {}
    for command in commands:
        done = subprocess.run(
            [*cli, *shlex.split(command)[1:]], check=False, env=env, capture_output=True, text=True,
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}: {done.stderr}"
        outputs[command.split()[1]] = done.stdout + done.stderr
    assert "| RES-PIN | deny | high | prediction |" in outputs["evidence"]
    assert "all intact" in outputs["evidence"]
    assert "against 8 anchors: intact" in outputs["verify"]
    assert "ds:customers" in outputs["lineage"]
