"""The store seam: one clickhouse-connect client for the embedded engine or a server.

``chdb://PATH`` (relative or absolute; ``chdb://:memory:``) opens the in-process chDB engine,
``http(s)://user:password@host:port`` a ClickHouse server; both speak the same client API and
SQL. This is the only module that imports clickhouse-connect; its errors become ``SinkError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

from auditline.errors import ConfigError, SinkError
from auditline.settings import ClickHouseSettings


def _import_client() -> Any:
    try:
        import clickhouse_connect
    except ImportError as exc:
        raise ConfigError(
            "the store needs clickhouse-connect: pip install 'auditline[store]'"
        ) from exc
    return clickhouse_connect


def connect(settings: ClickHouseSettings) -> Store:
    """Open the store named by ``settings.dsn`` (the database need not exist yet)."""
    clickhouse_connect = _import_client()
    dsn = settings.dsn
    try:
        if dsn.startswith("chdb:"):
            path = dsn.removeprefix("chdb:").removeprefix("//") or ":memory:"
            client = clickhouse_connect.get_client(interface="chdb", path=path)
            return Store(client, settings.database, embedded=True)
        parsed = urlparse(dsn)
        client = clickhouse_connect.get_client(
            host=parsed.hostname, port=parsed.port, username=parsed.username or "default",
            password=parsed.password or "", secure=parsed.scheme in ("https", "clickhouses"),
        )  # fmt: skip
    except Exception as exc:
        raise SinkError(f"cannot open the store at {_safe(dsn)}: {exc}") from exc
    return Store(client, settings.database, embedded=False)


class Store:
    """Thin wrapper: parameterised queries and column inserts, errors translated once."""

    def __init__(self, client: Any, database: str, *, embedded: bool) -> None:
        self.client = client
        self.database = database
        self.embedded = embedded

    def command(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any) -> Any:
        try:
            return self.client.command(sql, parameters=parameters, settings=settings or None)
        except Exception as exc:
            raise SinkError(f"ClickHouse refused: {_first_line(exc)}") from exc

    def rows(
        self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a query; ``{name:Type}`` placeholders bind ``parameters``."""
        try:
            result = self.client.query(sql, parameters=parameters, settings=settings or None)
        except Exception as exc:
            raise SinkError(f"ClickHouse refused: {_first_line(exc)}") from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def stream(
        self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of a query as they arrive, block by block: memory holds a block, not the result."""
        try:
            with self.client.query_rows_stream(
                sql, parameters=parameters, settings=settings or None
            ) as rows:
                yield from (tuple(row) for row in rows)
        except Exception as exc:
            raise SinkError(f"ClickHouse refused: {_first_line(exc)}") from exc

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        try:
            self.client.insert(f"{self.database}.{table}", rows, column_names=list(columns))
        except Exception as exc:
            raise SinkError(f"insert into {table} failed: {_first_line(exc)}") from exc

    def close(self) -> None:
        self.client.close()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__


def _safe(dsn: str) -> str:
    parsed = urlparse(dsn)
    if parsed.password:
        return dsn.replace(f":{parsed.password}@", ":***@")
    return dsn
