"""Numbered, idempotent DDL migrations (``migrations/NNNN_name.sql``), applied in order.

Placeholders: ``$db`` (database), ``$on_cluster`` (``ON CLUSTER name`` or nothing),
``$replacing`` / ``$merge_tree`` (``ReplacingMergeTree`` / ``MergeTree``, or their
``Replicated…`` variants with ``AUDITLINE_CLICKHOUSE__CLUSTER``). Files whose first line says
``server-only`` are skipped on the embedded engine. Applied versions are recorded in
``$db.schema_migrations``; every statement is also safe to run twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from string import Template

from auditline.errors import SinkError

from .store import Store


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def server_only(self) -> bool:
        return self.sql.lstrip().startswith("-- server-only")


def migrations() -> list[Migration]:
    found = []
    for entry in sorted(files("auditline.sinks.migrations").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(number), name, entry.read_text()))
    return found


def render(sql: str, database: str, cluster: str | None) -> list[str]:
    """The statements of one migration with placeholders filled in."""
    replicated = "Replicated" if cluster else ""
    path = "'/clickhouse/tables/{shard}/" + database + "/{uuid}', '{replica}'" if cluster else ""
    text = Template(sql).substitute(
        db=f"`{database}`",
        on_cluster=f"ON CLUSTER `{cluster}`" if cluster else "",
        replacing=f"{replicated}ReplacingMergeTree({path})",
        merge_tree=f"{replicated}MergeTree({path})",
    )
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def migrate(store: Store, cluster: str | None = None) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    db = store.database
    if not db.replace("_", "").isalnum():
        raise SinkError(f"database name {db!r} must be letters, digits and underscores")
    on_cluster = f" ON CLUSTER `{cluster}`" if cluster else ""
    store.command(f"CREATE DATABASE IF NOT EXISTS `{db}`{on_cluster}")
    store.command(
        f"CREATE TABLE IF NOT EXISTS `{db}`.schema_migrations{on_cluster} "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    _, rows = store.rows(f"SELECT version FROM `{db}`.schema_migrations")
    done = {row[0] for row in rows}
    applied = []
    for migration in migrations():
        if migration.version in done or (migration.server_only and store.embedded):
            continue
        for statement in render(migration.sql, db, cluster):
            store.command(statement)
        store.insert(
            "schema_migrations", ["version", "name"], [[migration.version, migration.name]]
        )
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied
