"""`auditline sql` reads the audit database only (issue 11 item 3): every escape tried here is
refused with exit 2 and one line saying why; time is bounded and Ctrl-C cancels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from auditline.sinks.sqldoor import refusals
from auditline.sinks.store import Store

from auditline.cli import main

ESCAPES = {
    "file table function": "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "file function": "SELECT file('/etc/passwd')",
    "file folded in a cast": "SELECT toUInt8(file('/etc/passwd'))",
    "file in a table function argument": "SELECT * FROM numbers(toUInt64(file('/etc/passwd')))",
    "probe of another database": "SELECT hasColumnInTable('other_db', 'secret', 'x')",
    "url": "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    "remote": "SELECT * FROM remote('127.0.0.1', system.one)",
    "executable": "SELECT * FROM executable('id', 'LineAsString', 'x String')",
    "merge over system": "SELECT * FROM merge('system', '.*')",
    "view of system": "SELECT * FROM view(SELECT * FROM system.tables)",
    "system table": "SELECT * FROM system.processes",
    "system table via CTE": "WITH x AS (SELECT * FROM system.users) SELECT * FROM x",
    "other database": "SELECT * FROM other_db.secret",
    "other database in a join": "SELECT * FROM audit_log AS a JOIN other_db.secret AS s ON 1",
    "dictionary": "SELECT dictGet('d', 'x', toUInt64(1))",
    "into outfile": "SELECT 1 INTO OUTFILE '/tmp/auditline-escape'",
    "format": "SELECT 1 FORMAT TSV",
    "settings": "SELECT count() FROM audit_log SETTINGS max_execution_time = 0",
    "nested settings": "SELECT * FROM (SELECT 1 SETTINGS readonly = 0)",
    "second statement": "SELECT 1; DROP TABLE audit_log",
    "comment trick": "SELECT 1) INTO OUTFILE '/tmp/auditline-escape' --",
    "drop": "DROP TABLE audit_log",
    "insert": "INSERT INTO audit_log SELECT * FROM audit_log",
    "with insert": "WITH x AS (SELECT 1) INSERT INTO audit_log SELECT * FROM audit_log",
    "create": "CREATE TABLE t (x UInt8) ENGINE = Memory",
    "set": "SET readonly = 0",
    "system command": "SYSTEM SHUTDOWN",
}


@pytest.fixture
def other_db(store: Store) -> Store:
    store.command("CREATE DATABASE IF NOT EXISTS other_db")
    store.command("CREATE TABLE IF NOT EXISTS other_db.secret (x String) ENGINE = Memory")
    store.command("INSERT INTO other_db.secret VALUES ('do not read')")
    return store


@pytest.mark.parametrize("query", ESCAPES.values(), ids=ESCAPES.keys())
def test_escape_is_refused(other_db: Store, query: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", query]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("auditline: error: auditline sql runs one read-only SELECT")
    assert "root:" not in err  # nothing of the host's files, not even in an error
    assert not Path("/tmp/auditline-escape").exists()
    _, count = other_db.rows(f"SELECT count() FROM `{other_db.database}`.audit_log")
    assert count == [(13,)]


def test_reads_of_the_audit_database_work(
    other_db: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    query = (
        "WITH k AS (SELECT kind FROM audit_log) SELECT kind, count() AS n FROM k "
        "GROUP BY kind ORDER BY kind"
    )
    assert main(["sql", query, "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"kind": "TrainingRun", "n": 2} in rows
    assert main(["sql", f"SELECT count() AS n FROM `{other_db.database}`.lineage_edges"]) == 0
    assert main(["sql", "SELECT sum(number) AS s FROM numbers(10)", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["s", "45"]


def test_time_and_size_are_bounded(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "SELECT count() FROM system.numbers", "--timeout", "1"]) == 2
    assert "Timeout exceeded" in capsys.readouterr().err
    assert main(["sql", "SELECT number FROM numbers(100)", "--max-rows", "10"]) == 2
    assert "Limit for result exceeded" in capsys.readouterr().err


def test_refusals_are_pure() -> None:
    names = [("table_name", "audit.audit_log"), ("table_name", "system.one"),
             ("table_function_name", "numbers"), ("function_name", "count")]  # fmt: skip
    assert refusals(names, "audit") == []
    assert refusals([("table_name", "auditx.t")], "audit") == [
        "table auditx.t is outside the audit database audit"
    ]
    assert refusals([("function_name", "dictGetString")], "audit") == [
        "function dictGetString() is not allowed"
    ]


def test_ctrl_c_cancels_a_running_query(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")},
        "AUDITLINE_CLICKHOUSE__DSN": f"chdb://{tmp_path}/store",
    }
    cli = [sys.executable, "-m", "auditline.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
    query = subprocess.Popen(
        [*cli, "sql", "SELECT count() FROM system.numbers", "--timeout", "120"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(3)
    assert query.poll() is None  # still counting
    started = time.monotonic()
    query.send_signal(signal.SIGINT)
    _, err = query.communicate(timeout=20)
    assert query.returncode == 130 and time.monotonic() - started < 10
    assert err.strip() == "auditline: interrupted: the query was cancelled"
