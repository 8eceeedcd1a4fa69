"""The store's inserts, on the embedded engine: the tables whose column types all have an Arrow
layout are inserted as Arrow and hold exactly what clickhouse-connect's Native insert stores;
the others, and rows that do not convert exactly, take the Native insert as before."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from auditline.sinks.rows import COLUMNS, Located, rows_for
from auditline.sinks.store import ArrowColumns, Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditline.demo import demo_events
from auditline.errors import SinkError
from auditline.events import Event
from tests.strategies import any_event
from tests.unit.sinks.platform import platform


def native(store: Store, table: str) -> str:
    """A twin of ``table`` that only clickhouse-connect's Native insert writes."""
    twin = f"{table}_native"
    store.command(
        f"CREATE TABLE IF NOT EXISTS `{store.database}`.{twin} AS `{store.database}`.{table}"
    )
    return twin


def stored(store: Store, table: str) -> list[tuple[Any, ...]]:
    columns = ", ".join(f"`{c}`" for c in COLUMNS[table.removesuffix("_native")])
    _, rows = store.rows(f"SELECT {columns} FROM `{store.database}`.{table} ORDER BY {columns}")
    return rows


def replaced(
    row: tuple[Any, ...], columns: tuple[str, ...], name: str, value: Any
) -> tuple[Any, ...]:
    """``row`` with the value of column ``name`` replaced."""
    i = columns.index(name)
    return (*row[:i], value, *row[i + 1 :])


def test_the_hot_tables_go_as_arrow_and_those_with_maps_or_arrays_native(empty: Store) -> None:
    layouts = {
        table: empty._insert_context(table, columns, {})[1] for table, columns in COLUMNS.items()
    }
    assert {t for t, layout in layouts.items() if layout is not None} >= {
        "audit_log",
        "predictions",
    }
    assert layouts["lineage_nodes"] is None and layouts["violations"] is None  # Map, Array


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(any_event(), max_size=12))
def test_every_table_holds_what_the_native_insert_stores(empty: Store, batch: list[Event]) -> None:
    """Every kind's rows (the demo's and the lineage fixture's, then generated ones), inserted
    by ``Store.insert`` and by clickhouse-connect's Native insert into a twin: the same rows."""
    events = demo_events() + platform() + batch
    rows = rows_for([Located(event, "t", 0, i) for i, event in enumerate(events)])
    for table, values in rows.tables.items():
        empty.insert(table, COLUMNS[table], values)
        twin = native(empty, table)
        empty.client.insert(
            f"{empty.database}.{twin}", [list(row) for row in values], list(COLUMNS[table])
        )
        assert stored(empty, table) == stored(empty, twin), table
        for name in (table, twin):  # the next example's rows alone (no merge in between)
            empty.command(f"TRUNCATE TABLE `{empty.database}`.{name}")


def test_rows_that_do_not_convert_exactly_take_the_native_insert(empty: Store) -> None:
    """A null where the column is not Nullable (Arrow would store the default) or a value of
    another type: the Native insert refuses them, as it always did; and what it takes, it
    stores as before."""
    row = rows_for([Located(platform()[6], "t", 0, 0)]).tables["predictions"][0]
    twin = native(empty, "predictions")
    empty.client.insert(f"{empty.database}.{twin}", [list(row)], list(COLUMNS["predictions"]))
    with patch.object(ArrowColumns, "table", return_value=None) as table:
        empty.insert("predictions", COLUMNS["predictions"], [row])
    assert table.called and stored(empty, "predictions") == stored(empty, twin)
    columns = COLUMNS["predictions"]
    no_model, wrong_score = (
        replaced(row, columns, "model_name", None),
        replaced(row, columns, "score", "high"),
    )
    for bad in (no_model, wrong_score):
        with pytest.raises(SinkError, match="insert into predictions failed"):
            empty.insert("predictions", COLUMNS["predictions"], [bad])
    assert stored(empty, "predictions") == stored(empty, twin)
