"""The store seam: one clickhouse-connect client for the embedded engine or a server.

``chdb://PATH`` (relative or absolute; ``chdb://:memory:``) opens the in-process chDB engine,
``http(s)://user:password@host:port`` a ClickHouse server; both speak the same client API and
SQL. This is the only module that imports clickhouse-connect; its errors become ``SinkError``.

An embedded store on a path has one owner, the process that opened the engine (chDB locks the
folder). The owner serves live queries to other processes (``owner.py``, ``endpoint.py``); there
``connect()`` returns a store whose client is clickhouse-connect's HTTP client talking to the owner
over loopback, read-only (``via_owner``), instead of failing on the engine's lock.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

from auditline.errors import ConfigError, NotFoundError, SinkError, StoreUnavailableError
from auditline.settings import ClickHouseSettings, data_dir, redacted_dsn

from .owner import Owner, advertised, lock_holder, owned_here, serve
from .walks import SqlWalks, Walks, indexed, through_owner

OWNER_START_S = 5.0  # how long a process holding the lock may take to advertise its endpoint


def _import_client() -> Any:
    try:
        import clickhouse_connect
    except ImportError as exc:
        raise ConfigError(
            "the store needs clickhouse-connect: pip install 'auditline[store]'"
        ) from exc
    return clickhouse_connect


def embedded_path(dsn: str) -> str | None:
    """The engine folder of a ``chdb://`` DSN (``:memory:`` when none is given); None for a
    server."""
    if not dsn.startswith("chdb:"):
        return None
    return dsn.removeprefix("chdb:").removeprefix("//") or ":memory:"


def open_existing(settings: ClickHouseSettings) -> Store:
    """The store a reader reads: it must exist, never be created by the reading
    (``NotFoundError`` saying where it looked)."""
    dsn = settings.dsn
    path = embedded_path(dsn)
    if path is not None and not path.startswith(":memory:") and not os.path.exists(path):
        raise NotFoundError(
            f"no embedded store at {path}: run `auditline sink` (or `auditline demo`) first, or "
            "set AUDITLINE_CLICKHOUSE__DSN to where it is"
        )
    store = connect(settings)
    _, found = store.rows("SELECT 1 FROM system.databases WHERE name = {d:String}",
                          {"d": store.database})  # fmt: skip
    if not found:
        store.close()
        raise NotFoundError(
            f"the store at {redacted_dsn(dsn)} has no audit database {store.database}: run "
            "`auditline migrate` or `auditline sink`, or set AUDITLINE_CLICKHOUSE__DATABASE"
        )
    return store


def connect(settings: ClickHouseSettings) -> Store:
    """Open the store named by ``settings.dsn`` (the database need not exist yet)."""
    clickhouse_connect = _import_client()
    dsn = settings.dsn
    path = embedded_path(dsn)
    if path is not None:
        return _embedded(clickhouse_connect, path, settings.database)
    try:
        parsed = urlparse(dsn)
        client = clickhouse_connect.get_client(
            host=parsed.hostname, port=parsed.port, username=parsed.username or "default",
            password=parsed.password or "", secure=parsed.scheme in ("https", "clickhouses"),
        )  # fmt: skip
    except Exception as exc:
        raise StoreUnavailableError(f"cannot open the store at {redacted_dsn(dsn)}: {exc}") from exc
    return Store(client, settings.database, embedded=False)


def _embedded(clickhouse_connect: Any, path: str, database: str) -> Store:
    """The engine at ``path`` opened here, or, when another process owns it, that owner's reads."""
    if path.startswith(":memory:"):
        client = _open_engine(clickhouse_connect, path)
        return Store(client, database, embedded=True, walks=indexed(path))
    return _here_or_via_owner(clickhouse_connect, _engine_folder(path), database, retry=True)


def _here_or_via_owner(clickhouse_connect: Any, path: str, database: str, *, retry: bool) -> Store:
    owner = None if owned_here(path) else _owner(path)
    if owner is not None:
        return _via_owner(clickhouse_connect, path, owner, database)
    try:
        client = _open_engine(clickhouse_connect, path)
    except SinkError:
        if retry and lock_holder(path) is not None:  # another process took the lock first
            return _here_or_via_owner(clickhouse_connect, path, database, retry=False)
        raise
    return Store(client, database, embedded=True, release=serve(path), walks=indexed(path))


def _engine_folder(path: str) -> str:
    """The folder's real path; its parent must exist, unless it is auditline's own data folder."""
    real = os.path.realpath(path)
    if os.path.dirname(real) == os.path.realpath(data_dir()):
        data_dir().mkdir(parents=True, exist_ok=True)  # the default DSN's home is ours to create
    if not os.path.isdir(os.path.dirname(real)):
        raise ConfigError(
            f"the embedded store's folder {path} cannot be created: its parent "
            f"{os.path.dirname(real)} does not exist; create it or fix AUDITLINE_CLICKHOUSE__DSN"
        )
    return real


def _owner(path: str) -> Owner | None:
    """The live owner of the store at ``path``; waits a little for one that is starting up."""
    deadline = time.monotonic() + OWNER_START_S
    while (owner := advertised(path)) is None:
        holder = lock_holder(path)
        if holder is None:
            return None
        if time.monotonic() > deadline:
            who = f" (pid {holder})" if holder else ""
            raise StoreUnavailableError(
                f"the embedded store at {path} is open in another process{who} that does not "
                "answer live queries; stop that process, or run it with this auditline version "
                "(an owner serves other processes' queries while it runs)"
            )
        time.sleep(0.2)
    return owner


def _open_engine(clickhouse_connect: Any, path: str) -> Any:
    try:
        return clickhouse_connect.get_client(interface="chdb", path=path)
    except Exception as exc:
        raise SinkError(f"cannot open the store at chdb://{path}: {_first_line(exc)}") from exc


def _via_owner(clickhouse_connect: Any, path: str, owner: Owner, database: str) -> Store:
    from clickhouse_connect.driver.httputil import get_pool_manager

    pool = get_pool_manager()  # its own: no proxy from the environment for a loopback endpoint
    try:
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=owner.port, access_token=owner.token, compress=False,
            query_retries=0, autogenerate_session_id=False, pool_mgr=pool,
        )  # fmt: skip
    except Exception as exc:
        raise StoreUnavailableError(
            f"cannot query the embedded store at {path} through its owner (pid {owner.pid}): "
            f"{_first_line(exc)}"
        ) from exc
    # The owner applies a request's settings in the request's own session and pins readonly = 1
    # after them; its system.settings, read at readonly = 1, calls every setting read-only.
    client.server_settings = {
        name: setting._replace(readonly=int(name == "readonly"))
        for name, setting in client.server_settings.items()
    }
    return Store(
        client, database, embedded=True, owner_pid=owner.pid, release=pool.clear,
        walks=through_owner(owner.port, owner.token),
    )  # fmt: skip


class Store:
    """Thin wrapper: parameterised queries and column inserts, errors translated once.

    ``embedded``: the engine is chDB (server-only migrations are skipped). ``owner_pid``: set when
    another process owns this embedded store and answers the queries; they are read-only then
    (the owner runs them at ``readonly = 1``) and ``insert()`` is refused.
    """

    def __init__(
        self,
        client: Any,
        database: str,
        *,
        embedded: bool,
        owner_pid: int | None = None,
        release: Callable[[], None] | None = None,
        walks: Callable[[Store], Walks] | None = None,
    ) -> None:
        self.client = client
        self.database = database
        self.embedded = embedded
        self.owner_pid = owner_pid
        self._release = release
        self.walks = (walks or SqlWalks)(self)  # lineage walks (``walks.py``), told of writes
        self._insert_contexts: dict[
            tuple[str, tuple[str, ...], tuple[Any, ...]], tuple[Any, ArrowColumns | None]
        ] = {}
        self._inserting = threading.Lock()  # an insert context holds one insert's data

    @property
    def via_owner(self) -> bool:
        return self.owner_pid is not None

    def command(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any) -> Any:
        self._insert_contexts.clear()
        try:
            return self.client.command(
                sql, parameters=parameters, settings=self._settings(settings)
            )
        except Exception as exc:
            raise SinkError(f"{self._refuser} refused: {_first_line(exc)}") from exc
        finally:
            self.walks.ran(sql)

    def rows(
        self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a query; ``{name:Type}`` placeholders bind ``parameters``."""
        try:
            result = self.client.query(
                sql, parameters=parameters, settings=self._settings(settings)
            )
        except Exception as exc:
            raise SinkError(f"{self._refuser} refused: {_first_line(exc)}") from exc
        finally:
            self.walks.ran(sql)
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def stream(
        self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of a query as they arrive, block by block: memory holds a block, not the result."""
        try:
            with self.client.query_rows_stream(
                sql, parameters=parameters, settings=self._settings(settings)
            ) as rows:
                yield from (tuple(row) for row in rows)
        except Exception as exc:
            raise SinkError(f"{self._refuser} refused: {_first_line(exc)}") from exc
        finally:
            self.walks.ran(sql)

    def arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """A query's result as a pyarrow table (an embedded engine's lineage index reads it)."""
        try:
            return self.client.query_arrow(sql, parameters=parameters)
        except Exception as exc:
            raise SinkError(f"{self._refuser} refused: {_first_line(exc)}") from exc
        finally:
            self.walks.ran(sql)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        **settings: Any,
    ) -> None:
        """One insert of ``rows`` (tuples in ``columns`` order) into ``table``, as columns, with
        these query ``settings``: as Arrow where the table has an Arrow layout (``ArrowColumns``),
        else clickhouse-connect's Native insert."""
        if not rows:
            return
        if self.via_owner:
            raise SinkError(
                f"cannot insert into {table}: the embedded store is owned by process "
                f"{self.owner_pid}, which answers read-only queries; stop it to write from here"
            )
        try:
            with self._inserting, self.walks.inserting(table, columns, rows):
                # columns, not rows: one C-level transpose here
                data = list(zip(*rows, strict=True))
                context, arrow = self._insert_context(table, columns, settings)
                batch = arrow.table(data) if arrow is not None else None
                if batch is None:
                    self.client.insert(data=data, context=context)
                else:
                    extra = self._settings(settings)
                    self.client.insert_arrow(context.table, batch, settings=extra)
        except Exception as exc:
            self._insert_contexts.clear()  # a failed insert may leave its data in the context
            raise SinkError(f"insert into {table} failed: {_first_line(exc)}") from exc

    def _insert_context(
        self, table: str, columns: Sequence[str], settings: dict[str, Any]
    ) -> tuple[Any, ArrowColumns | None]:
        """clickhouse-connect's insert context of a table, columns and settings, with the Arrow
        layout of those columns when every type has one and the engine is the embedded one (a
        server's version may not read every layout): the column types are described once, not
        before every insert (``command`` forgets them: DDL may change them)."""
        key = (table, tuple(columns), tuple(sorted(settings.items())))
        found = self._insert_contexts.get(key)
        if found is None:
            context = self.client.create_insert_context(
                f"{self.database}.{table}", list(columns), column_oriented=True,
                settings=self._settings(settings),
            )  # fmt: skip
            arrow = arrow_columns(context) if self.embedded else None
            found = self._insert_contexts[key] = (context, arrow)
        return found

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()  # the owner stops serving before its engine closes
        self.walks.close()
        self.client.close()

    @property
    def _refuser(self) -> str:
        return f"the store's owner (pid {self.owner_pid})" if self.via_owner else "ClickHouse"

    def _settings(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        if self.via_owner:  # the owner runs every query at readonly = 1 already
            settings = {k: v for k, v in settings.items() if k != "readonly"}
        return settings or None


_ARROW_UNITS = {0: "s", 3: "ms", 6: "us", 9: "ns"}
_ARROW_SCALARS = {
    "String": "binary", "Bool": "bool_", "Float32": "float32", "Float64": "float64",
    **{f"{s}Int{n}": f"{s.lower()}int{n}" for s in ("", "U") for n in (8, 16, 32, 64)},
}  # fmt: skip
"""ClickHouse types sent as Arrow and the pyarrow type of each (strings as binary: ``str`` and
``bytes`` values both convert in C); DateTime64 in UTC and UUID below."""


class ArrowColumns:
    """An insert's columns as an Arrow table, built by pyarrow in C from the Python values.

    clickhouse-connect's Native insert writes a value at a time in Python (about a third of an
    insert's CPU); pyarrow converts a column of Python values in C, and the engine reads Arrow
    about as fast as Native when LowCardinality columns come as dictionaries. The same values are
    stored: timestamps floor to the column's precision as clickhouse-connect floors them, UUIDs go
    as their 16 bytes. ``table`` returns None when a value does not convert exactly (a null in a
    column that is not Nullable, a wrong type, a number out of range): the Native insert then
    takes the rows, and refuses them or stores them as it always did.
    """

    def __init__(self, pa: Any, types: list[tuple[str, Any, bool, bool]], names: list[str]) -> None:
        self.pa, self.types, self.names = pa, types, names

    def table(self, data: list[tuple[Any, ...]]) -> Any:
        pa, arrays = self.pa, []
        try:
            for (kind, arrow, nullable, low_cardinality), column in zip(
                self.types, data, strict=True
            ):
                values = (  # a UUID's 16 bytes, from its integer (``bytes`` is a property)
                    [None if v is None else v.int.to_bytes(16) for v in column]
                    if kind == "UUID"
                    else column
                )
                array = pa.array(values, arrow)
                if array.null_count and not nullable:
                    return None
                arrays.append(array.dictionary_encode() if low_cardinality else array)
        except (pa.ArrowException, TypeError, ValueError, AttributeError, OverflowError):
            return None
        return pa.Table.from_arrays(arrays, names=self.names)


def arrow_columns(context: Any) -> ArrowColumns | None:
    """The Arrow layout of an insert context's columns; None when a type has none here."""
    import pyarrow as pa  # type: ignore[import-untyped]

    types = []
    for column_type in context.column_types:
        kind = _unwrap(column_type.name, "LowCardinality")
        low_cardinality = kind != column_type.name
        nullable = kind != (kind := _unwrap(kind, "Nullable"))
        if kind in _ARROW_SCALARS:
            arrow = getattr(pa, _ARROW_SCALARS[kind])()
        elif kind == "UUID":
            arrow = pa.binary(16)
        elif (found := re.fullmatch(r"DateTime64\((\d), 'UTC'\)", kind)) and int(
            found.group(1)
        ) in _ARROW_UNITS:
            arrow = pa.timestamp(_ARROW_UNITS[int(found.group(1))], tz="UTC")
        else:
            return None
        types.append((kind, arrow, nullable, low_cardinality))
    return ArrowColumns(pa, types, list(context.column_names))


def _unwrap(name: str, wrapper: str) -> str:
    """``T`` of a type name ``wrapper(T)``; else the name as it is."""
    inner = name.removeprefix(f"{wrapper}(")
    return inner[:-1] if inner != name else name


def _first_line(exc: Exception) -> str:
    """The engine's message: for HTTP, the server's text without the client's wrapping."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    line = lines[0].split("server response: ", 1)[-1]
    return re.sub(r" \(for url [^)]*\)$", "", line)[:500]
