"""Every command fails clearly (issue 11 items 5-7): one line on standard error naming what was
wrong and what to do, the documented exit code, never a traceback, and no state created by a
read. Each command runs as a user runs it: a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")}
    base |= {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "auditline.cli", *args], env=base | env, capture_output=True,
        text=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def test_binary_input_files(tmp_path: Path, garbage: Path) -> None:
    code, _, err = run(tmp_path, "check", str(garbage))
    assert code == 2 and "not UTF-8 text" in one_line(err)
    code, _, err = run(tmp_path, "drift", "--reference", str(garbage), str(garbage))
    assert code == 2 and "not UTF-8 text" in one_line(err)
    code, _, err = run(tmp_path, "check", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "cannot read" in one_line(err)


def test_malformed_settings(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "config", AUDITLINE_KAFKA__EXTRA="{not json")
    assert code == 2 and "complex settings take JSON" in one_line(err)
    code, _, err = run(tmp_path, "keys", "generate", "--key-id", "k1",
                       AUDITLINE_PRODUCER__SIGNING_KEY="not-hex")  # fmt: skip
    assert code == 0  # keys generate does not need the HMAC key
    code, _, err = run(
        tmp_path, "verify", AUDITLINE_PRODUCER__SIGNING_KEY="not-hex",
        AUDITLINE_CLICKHOUSE__DSN=f"chdb://{tmp_path}/store",
    )  # fmt: skip
    assert code == 2 and "must be hex" in one_line(err)
    code, _, err = run(tmp_path, "config", AUDITLINE_CLICKHOUSE__DSN="chdb:///nonexistent/x/y")
    assert code == 0  # a setting, checked where it is used:
    code, _, err = run(tmp_path, "migrate", AUDITLINE_CLICKHOUSE__DSN="chdb:///nonexistent/x/y")
    assert code == 2 and "does not exist" in one_line(err)
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize("command", ["sink", "worker"])
def test_no_broker_is_unavailable_in_bounded_time(tmp_path: Path, command: str) -> None:
    code, out, err = run(
        tmp_path, command, AUDITLINE_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:9",
        AUDITLINE_KAFKA__CONNECT_TIMEOUT_S="2", AUDITLINE_CLICKHOUSE__DSN=f"chdb://{tmp_path}/s",
    )  # fmt: skip
    assert code == 3 and "no Kafka broker answered at 127.0.0.1:9" in one_line(err)
    assert out == ""


def test_reads_never_create_a_store(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "lineage", "upstream", "ds:x")
    assert code == 4 and "no embedded store at" in one_line(err)
    assert not (tmp_path / "data" / "auditline" / "clickhouse").exists()
    dsn = f"chdb://{tmp_path}/store"
    assert run(tmp_path, "migrate", AUDITLINE_CLICKHOUSE__DSN=dsn)[0] == 0
    code, _, err = run(tmp_path, "sql", "SELECT 1", AUDITLINE_CLICKHOUSE__DSN=dsn,
                       AUDITLINE_CLICKHOUSE__DATABASE="nosuch")  # fmt: skip
    assert code == 4 and "has no audit database nosuch" in one_line(err)


def test_unknown_ids_and_missing_arguments(tmp_path: Path) -> None:
    env = {"AUDITLINE_CLICKHOUSE__DSN": f"chdb://{tmp_path}/store"}
    assert run(tmp_path, "migrate", **env)[0] == 0
    cases = [
        (("evidence", "nope:1"), 4, "no model version nope:1"),
        (("evidence", "readmit"), 2, "give NAME:VERSION"),
        (("lineage", "upstream", "ds:nope"), 4, "no lineage node ds:nope"),
        (("lineage", "path", "ds:nope"), 4, "no lineage node ds:nope"),
        (("query", "predictions", "--derived-from", "ds:nope"), 4, "no lineage node ds:nope"),
        (("verify", "--producer", "nosuch"), 4, "no producer service named nosuch"),
    ]
    for args, expected, text in cases:
        code, out, err = run(tmp_path, *args, **env)
        assert (code, out) == (expected, ""), args
        assert text in one_line(err), args


def test_help_documents_the_exit_codes(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "--help")
    assert code == 0 and "exit codes: 0 ok; 1 findings" in " ".join(out.split())


def test_the_console_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "console", "--host", "0.0.0.0")
    assert code == 2 and "set AUDITLINE_CONSOLE__TOKEN" in one_line(err)
    code, _, err = run(tmp_path, "console", AUDITLINE_CLICKHOUSE__DSN=f"chdb://{tmp_path}/none")
    assert code == 4 and "no embedded store" in one_line(err)
    assert not (tmp_path / "none").exists()
    code, _, err = run(tmp_path, "console", "--port", "70000")
    assert code == 2 and "70000 is not a port" in err  # argparse: usage, then the error
