from __future__ import annotations

from auditline.sinks.migrate import migrations, render


def test_migrations_are_numbered_in_order_without_gaps() -> None:
    versions = [m.version for m in migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert [m.server_only for m in migrations()].count(True) == 1


def test_cluster_variant_uses_on_cluster_and_replicated_engines() -> None:
    sql = "\n".join(s for m in migrations() for s in render(m.sql, "audit", "prod"))
    assert "ON CLUSTER `prod`" in sql
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/{uuid}', '{replica}')"
        in sql
    )
    assert "ENGINE = ReplicatedMergeTree(" in sql
    single = "\n".join(s for m in migrations() for s in render(m.sql, "audit", None))
    assert "ON CLUSTER" not in single and "Replicated" not in single
    assert "ENGINE = ReplacingMergeTree()" in single and "$" not in single
