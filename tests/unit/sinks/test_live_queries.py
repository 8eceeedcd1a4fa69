"""Live queries on an embedded store: another process reads through the owner, read-only.

The owner is a real second process holding the chDB lock; the test process never opens the
engine itself while the owner runs (chDB hosts one engine per process), it reads over loopback.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from auditline.sinks import store as store_module
from auditline.sinks.endpoint import EngineError, parse_request
from auditline.sinks.owner import ENDPOINT_FILE
from auditline.sinks.store import Store, connect

from auditline.errors import ConfigError, SinkError
from auditline.settings import ClickHouseSettings

ROOT = Path(__file__).resolve().parents[3]
COLUMNS = "SELECT id, at, toTimeZone(at, 'Europe/Berlin') AS berlin, ref, tags, note FROM live.t"

OWNER = """
import sys, uuid
from datetime import UTC, datetime, timedelta
from auditline.settings import ClickHouseSettings
from auditline.sinks.store import connect

settings = ClickHouseSettings(dsn=sys.argv[1], database="live")
store = connect(settings)
store.command("CREATE DATABASE IF NOT EXISTS live")
store.command(
    "CREATE TABLE IF NOT EXISTS live.t (id UInt32, at DateTime64(3, 'UTC'), ref UUID, "
    "tags Array(String), note Nullable(String)) ENGINE = MergeTree ORDER BY id"
)

def add(first):
    rows = [[i, datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(seconds=i), uuid.UUID(int=i), [f"t{i}"] * i,
             None if i % 2 else f"n{i}"] for i in range(first, first + 2)]
    store.insert("t", ["id", "at", "ref", "tags", "note"], rows)

add(0)
second = connect(settings)  # the same process: the engine directly, the endpoint shared
assert not second.via_owner
second.close()
print("ready", flush=True)
for line in sys.stdin:
    add(int(line))
    print("added", flush=True)
store.close()
"""

DIRECT = """
import json, sys
from auditline.settings import ClickHouseSettings
from auditline.sinks.store import connect

store = connect(ClickHouseSettings(dsn=sys.argv[1], database="live"))
_, rows = store.rows(sys.argv[2] + " ORDER BY id")
advertised = json.loads(open(sys.argv[3]).read())["pid"]
print(json.dumps({"via_owner": store.via_owner, "rows": repr(rows), "advertised": advertised}))
store.close()
"""

LOCKER = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AUDITLINE_")}


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=_env(), text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", "the child process did not start"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    path = tmp_path_factory.mktemp("live") / "store"
    proc = _start(OWNER, f"chdb://{path}")
    yield proc, path
    _stop(proc)


@pytest.fixture
def reader(owner: tuple[subprocess.Popen[str], Path]) -> Iterator[Store]:
    store = connect(ClickHouseSettings(dsn=f"chdb://{owner[1]}", database="live"))
    yield store
    store.close()


def test_another_process_reads_the_owners_rows_with_the_engines_types(
    owner: tuple[subprocess.Popen[str], Path], reader: Store
) -> None:
    assert reader.via_owner and reader.embedded and reader.owner_pid == owner[0].pid
    columns, rows = reader.rows(COLUMNS + " WHERE id < 2 ORDER BY id")
    assert columns == ["id", "at", "berlin", "ref", "tags", "note"]
    first, second = rows
    assert first[1] == datetime(2026, 3, 1, 12, 0, 0)  # UTC columns: naive UTC, as the chdb client
    assert first[2].utcoffset() == timedelta(hours=1) and first[2].hour == 13  # zoned: aware
    assert first[3] == uuid.UUID(int=0) and isinstance(first[3], uuid.UUID)
    assert second[4] == ["t1"] and first[4] == []
    assert first[5] == "n0" and second[5] is None
    assert reader.command("SELECT count() FROM live.t WHERE id < 2") == 2
    assert sum(1 for _ in reader.stream("SELECT number FROM numbers(300000)")) == 300000


def test_the_reader_sees_what_the_owner_inserted_meanwhile(
    owner: tuple[subprocess.Popen[str], Path], reader: Store
) -> None:
    query = "SELECT count() FROM live.t WHERE id >= 100 AND id < 102"
    assert reader.rows(query)[1] == [(0,)]
    proc = owner[0]
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("100\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "added"
    assert reader.rows(query)[1] == [(2,)]


def test_parameters_and_query_text_reach_the_engine_unchanged(reader: Store) -> None:
    odd = "x'y\\z\t\n\"é -- not a comment"
    sql = "SELECT {s:String} AS s, 'a\\tb\\\\' AS t -- a comment\n, count() AS n FROM live.t " + (
        "WHERE id IN {ids:Array(UInt32)}"
    )
    ids = list(range(3000))  # a long parameter: clickhouse-connect sends a multipart form
    assert reader.rows(sql, {"s": odd, "ids": ids})[1][0][:2] == (odd, "a\tb\\")


def test_an_engine_error_in_mid_stream_reaches_the_reader(reader: Store) -> None:
    with pytest.raises(SinkError, match="395"):
        for _ in reader.stream("SELECT throwIf(number = 100000) FROM numbers(200000)"):
            pass


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO live.t (id) VALUES (999)",
        "CREATE TABLE live.x (a UInt8) ENGINE = Memory",
        "DROP TABLE live.t",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
        "KILL QUERY WHERE 1",
        "SELECT 1 INTO OUTFILE '{outfile}'",
        "SELECT 1; DROP TABLE live.t",
        "SELECT 1 SETTINGS readonly = 0",
        "SYSTEM FLUSH LOGS",
    ],
)
def test_writes_and_escapes_are_refused(reader: Store, tmp_path: Path, sql: str) -> None:
    outfile = tmp_path / "out.txt"
    with pytest.raises(SinkError, match=f"owner \\(pid {reader.owner_pid}\\) refused"):
        reader.rows(sql.format(outfile=outfile))
    assert not outfile.exists()
    assert reader.rows("SELECT count() FROM live.t WHERE id < 2")[1] == [(2,)]


def test_insert_through_the_owner_is_refused_before_sending(reader: Store) -> None:
    with pytest.raises(SinkError, match="answers read-only queries"):
        reader.insert("t", ["id"], [[7]])


def test_a_clients_settings_apply_and_readonly_stays_pinned(
    owner: tuple[subprocess.Popen[str], Path], reader: Store
) -> None:
    assert reader.rows("SELECT getSetting('max_result_rows')", max_result_rows=5)[1] == [(5,)]
    with pytest.raises(SinkError, match="Limit for result exceeded"):
        reader.rows(
            "SELECT number FROM numbers(10)", max_result_rows=2, result_overflow_mode="throw"
        )
    advertised = json.loads((owner[1] / ENDPOINT_FILE).read_text())
    for level in ("0", "2"):
        conn = http.client.HTTPConnection("127.0.0.1", advertised["port"], timeout=10)
        conn.request(
            "POST", f"/?readonly={level}", body=b"SELECT * FROM file('/etc/passwd', 'LineAsString')",
            headers={"Authorization": f"Bearer {advertised['token']}"},
        )  # fmt: skip
        response = conn.getresponse()
        assert response.status == 500 and b"/root" not in response.read(), level
        assert response.getheader("X-ClickHouse-Exception-Code") == "164"
        conn.close()


def test_the_endpoint_is_loopback_and_needs_the_token(
    owner: tuple[subprocess.Popen[str], Path],
) -> None:
    endpoint = owner[1] / ENDPOINT_FILE
    assert stat.S_IMODE(endpoint.stat().st_mode) == 0o600
    advertised = json.loads(endpoint.read_text())
    assert advertised["pid"] == owner[0].pid
    for auth in ("Bearer wrong", "", f"Basic {advertised['token']}"):
        conn = http.client.HTTPConnection("127.0.0.1", advertised["port"], timeout=10)
        conn.request("POST", "/", body=b"SELECT 1", headers={"Authorization": auth})
        response = conn.getresponse()
        assert response.status == 403, auth
        assert response.getheader("X-ClickHouse-Exception-Code") == "516"
        conn.close()


def test_after_the_owner_exits_the_next_process_opens_the_engine_over_a_stale_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store"
    dsn = f"chdb://{path}"
    proc = _start(OWNER, dsn)
    reader = connect(ClickHouseSettings(dsn=dsn, database="live"))
    _, through_owner = reader.rows(COLUMNS + " ORDER BY id")
    reader.close()
    _stop(proc)
    endpoint = path / ENDPOINT_FILE
    assert not endpoint.exists()  # the owner removed it on close
    endpoint.write_text(json.dumps({"pid": proc.pid, "port": 9, "token": "stale"}))  # a crash's

    direct = subprocess.run(
        [sys.executable, "-c", DIRECT, dsn, COLUMNS, str(endpoint)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    seen = json.loads(direct.stdout)
    assert seen["via_owner"] is False
    assert seen["rows"] == repr(through_owner)  # the same values and Python types both ways
    assert seen["advertised"] not in (proc.pid, os.getpid())  # the new owner replaced the file


def test_a_lock_held_by_a_process_that_does_not_serve_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store"
    locker = _start(LOCKER, str(path))
    monkeypatch.setattr(store_module, "OWNER_START_S", 0.3)
    try:
        with pytest.raises(SinkError) as caught:
            connect(ClickHouseSettings(dsn=f"chdb://{path}"))
    finally:
        _stop(locker)
    message = str(caught.value)
    assert f"is open in another process (pid {locker.pid})" in message
    assert str(path) in message and "\n" not in message
    assert "Cannot lock" not in capfd.readouterr().err  # the engine was not even tried


def test_a_chdb_path_whose_parent_is_missing_is_a_config_error() -> None:
    parent = Path(f"/nonexistent-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ConfigError) as caught:
        connect(ClickHouseSettings(dsn=f"chdb://{parent}/store"))
    assert f"{parent}/store" in str(caught.value)
    assert "AUDITLINE_CLICKHOUSE__DSN" in str(caught.value)
    assert not parent.exists()


def test_the_default_stores_data_folder_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default = ClickHouseSettings().dsn.removeprefix("chdb://")
    assert default == str(tmp_path / "xdg" / "auditline" / "clickhouse")
    assert store_module._engine_folder(default) == default
    assert (tmp_path / "xdg" / "auditline").is_dir()


def test_requests_are_parsed_as_clickhouses_http_interface() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT {x:String}\r\n'
        b'--b\r\nContent-Disposition: form-data; name="param_x"\r\n\r\n\xc3\xa9\r\n--b--\r\n'
    )
    request = parse_request(
        "/?database=live&param_y=1&max_threads=2&wait_end_of_query=1&query_id=q",
        "multipart/form-data; boundary=b", body,
    )  # fmt: skip
    assert request.sql == "SELECT {x:String}" and request.params == {"x": "é", "y": "1"}
    assert request.settings == {"max_threads": "2"} and request.database == "live"
    assert not request.stream
    with pytest.raises(EngineError):
        parse_request("/?bad%20name=1", "text/plain", b"SELECT 1")
    with pytest.raises(EngineError):
        parse_request("/", "text/plain", b"  ")
