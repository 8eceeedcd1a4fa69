from __future__ import annotations

from collections.abc import Iterator

import pytest
from auditline.sinks.migrate import migrate
from auditline.sinks.rows import COLUMNS, Located, rows_for
from auditline.sinks.store import Store, connect

from auditline.settings import ClickHouseSettings
from tests.unit.sinks.platform import platform


@pytest.fixture
def store(store_settings: ClickHouseSettings) -> Iterator[Store]:
    """A migrated database of this test's own holding the fixture platform's events."""
    store = connect(store_settings)
    migrate(store)
    rows = rows_for([Located(e, "t", 0, i) for i, e in enumerate(platform())])
    for table, values in rows.tables.items():
        store.insert(table, COLUMNS[table], values)
    yield store


@pytest.fixture
def empty(store_settings: ClickHouseSettings) -> Iterator[Store]:
    """A migrated database of this test's own, empty."""
    store = connect(store_settings)
    migrate(store)
    yield store
    store.close()
