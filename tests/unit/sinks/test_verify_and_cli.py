"""`auditline verify` finds tampering and deletion in the store; CLI parameters cannot inject SQL."""

from __future__ import annotations

import json

import pytest
from auditline.sinks.store import Store
from auditline.sinks.verification import verify_log

from auditline.cli import main


def db(store: Store) -> str:
    return f"`{store.database}`"


def test_an_untouched_log_verifies(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    report = verify_log(store)
    assert report.ok and report.events == 13 and report.streams == 5
    assert main(["verify"]) == 0
    assert "verified 13 events in 5 streams against 0 anchors: intact" in capsys.readouterr().err
    _, written = store.rows(f"SELECT count() FROM {db(store)}.chain_checkpoints")
    assert written == [(0,)]  # verify is read-only
    assert main(["attest"]) == 0
    _, checkpoints = store.rows(
        f"SELECT stream, sequence FROM {db(store)}.chain_checkpoints ORDER BY stream"
    )
    assert ("platform/p1/predictions", 2) in checkpoints
    assert main(["verify"]) == 0
    assert "against 5 anchors: intact" in capsys.readouterr().err


def test_a_row_tampered_in_clickhouse_is_found(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store.command(
        f"ALTER TABLE {db(store)}.audit_log UPDATE payload = replace(payload, '\"records\":10', '\"records\":1') "
        "WHERE kind = 'DataMovement' AND sequence = 0",
        mutations_sync=2,
    )
    report = verify_log(store)
    assert [(f.kind, f.stream, f.sequence) for f in report.findings] == [
        ("tampered", "platform/p1/movements", 0)
    ]
    assert main(["verify", "--format", "json"]) == 1
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert found[0]["finding"] == "tampered"


def test_a_deleted_row_is_found(store: Store) -> None:
    store.command(
        f"DELETE FROM {db(store)}.audit_log WHERE stream = 'platform/p1/predictions' AND sequence = 1",
        mutations_sync=2,
    )
    report = verify_log(store)
    assert [(f.kind, f.sequence, f.expected_sequence) for f in report.findings] == [("gap", 2, 1)]


def test_a_consistently_rewritten_row_breaks_the_next_link(store: Store) -> None:
    _, rows = store.rows(
        f"SELECT payload FROM {db(store)}.audit_log WHERE stream = 'platform/p1/assets' AND sequence = 1"
    )
    from auditline.events import AssetDeclared
    from auditline.integrity.chain import seal

    forged = seal(
        AssetDeclared.model_validate_json(rows[0][0]).model_copy(update={"owner": "mallory"})
    )
    store.command(
        f"ALTER TABLE {db(store)}.audit_log UPDATE payload = {{p:String}}, hash = {{h:String}} "
        "WHERE stream = 'platform/p1/assets' AND sequence = 1",
        {"p": forged.model_dump_json(), "h": forged.envelope.hash},
        mutations_sync=2,
    )
    kinds = [(f.kind, f.sequence) for f in verify_log(store).findings]
    assert kinds == [("broken_chain", 2)]


INJECTIONS = [
    "x'; DROP TABLE audit_log; --",
    "raw') OR 1=1 --",
    "' UNION SELECT name, 1, 'x', 'y' FROM system.tables --",
    "{frontier:String}",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_cli_parameters_cannot_inject_sql(
    store: Store, payload: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lineage", "downstream", payload, "--format", "json"]) == 4  # not found
    assert main(["lineage", "upstream", payload, "--format", "json"]) == 4
    assert main(["query", "predictions", "--derived-from", payload, "--format", "json"]) == 4
    assert capsys.readouterr().out.strip() == ""
    assert main(["query", "transfers", "--classification", payload, "--format", "json"]) == 0
    assert capsys.readouterr().out.strip() == ""
    assert main(["query", "transfers", "--from", payload]) == 2  # not a jurisdiction: an error
    _, count = store.rows(f"SELECT count() FROM {db(store)}.audit_log")
    assert count == [(13,)]


def test_sql_command_refuses_writes(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", f"DROP TABLE {store.database}.audit_log"]) == 2
    assert "read-only" in capsys.readouterr().err
    sneaky = f"SELECT 1; DROP TABLE {store.database}.audit_log"
    assert main(["sql", sneaky]) == 2
    assert (
        main(
            [
                "sql",
                f"WITH x AS (SELECT 1) INSERT INTO {store.database}.audit_log SELECT * FROM {store.database}.audit_log",
            ]
        )
        == 2
    )
    capsys.readouterr()
    assert (
        main(["sql", f"SELECT count() AS n FROM {store.database}.audit_log", "--format", "json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"n": 13}


def test_evidence_bundle_names_sources_transfers_training_serving(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evidence", "churn:2"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert {s["asset_id"] for s in bundle["sources"]} == {"raw", "features", "other"}
    assert [t["to"] for t in bundle["transfers"]] == ["raw-us"]  # raw-sg did not feed churn:2
    assert [t["run_id"] for t in bundle["training"]] == ["r2"]
    assert [d["location"] for d in bundle["serving"]] == ["SG aws ap-southeast-1"]
    assert all(c["ok"] for c in bundle["chain_verification"])
    assert main(["evidence", "churn:2", "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("# Evidence: model:churn:2")


def test_store_stream_reads_a_large_result_block_by_block(store: Store) -> None:
    rows = store.stream("SELECT number, toString(number) FROM numbers({n:UInt64})", {"n": 300_000})
    assert not isinstance(rows, list)  # verify_log walks the log without holding it
    count = last = 0
    for count, (number, text) in enumerate(rows, 1):  # noqa: B007 - the last row is checked
        last = number
        assert text == str(number)
    assert (count, last) == (300_000, 299_999)
