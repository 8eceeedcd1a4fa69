"""The store side of the sink's exactly-once effect, on the embedded engine: ids already stored
and repeats within a batch are skipped, derived rows come with every stored event; inserts
reuse the columns they described until DDL may have changed them; no garbage collection inside
a batch; the trusted decode stores every table as decoding through the models did."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
from auditline.sinks import writer
from auditline.sinks.migrate import migrate
from auditline.sinks.records import decoder_for
from auditline.sinks.rows import COLUMNS, Located
from auditline.sinks.store import Store, connect
from auditline.sinks.writer import StoreWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.collector import gc_deferred
from auditline.contracts import CONTRACTS_VERSION
from auditline.demo import demo_events
from auditline.errors import SinkError
from auditline.events import Event, Prediction
from auditline.settings import ClickHouseSettings
from tests.strategies import any_event
from tests.unit.sinks.platform import platform


def located(events: list[Event], first_offset: int = 0) -> list[Located]:
    return [Located(e, "t", 0, first_offset + i) for i, e in enumerate(events)]


def counts(store: Store) -> tuple[int, int, int]:
    db = store.database
    _, [(rows, ids, predictions)] = store.rows(
        f"SELECT count(), uniqExact(event_id), "
        f"(SELECT count() FROM `{db}`.predictions FINAL) FROM `{db}`.audit_log"
    )
    return rows, ids, predictions


def test_a_replayed_batch_stores_nothing_twice(empty: Store) -> None:
    events = platform()
    writer = StoreWriter(empty)
    assert writer.write(located(events)) == (len(events), 0)
    assert writer.write(located(events)) == (0, len(events))  # a crash before the commit
    predictions = sum(isinstance(e, Prediction) for e in events)
    assert counts(empty) == (len(events), len(events), predictions)


def test_repeats_within_a_batch_and_ids_already_stored_are_skipped(empty: Store) -> None:
    events = platform()
    writer = StoreWriter(empty)
    assert writer.write(located(events[:5])) == (5, 0)
    # a producer's replay: events already stored and repeated, at later offsets, beside new ones
    batch = located(events[3:] + events[3:7], first_offset=100)
    assert writer.write(batch) == (len(events) - 5, 2 + 4)
    predictions = sum(isinstance(e, Prediction) for e in events)
    assert counts(empty) == (len(events), len(events), predictions)


def test_late_events_older_than_the_newest_stored_are_looked_up_and_stored(empty: Store) -> None:
    events = platform()
    writer = StoreWriter(empty)
    assert writer.write(located(events[5:])) == (len(events) - 5, 0)
    assert writer.write(located(events[:7], first_offset=50)) == (5, 2)
    assert counts(empty)[:2] == (len(events), len(events))


def test_ranges_holding_more_than_the_lookup_reads_look_the_batch_ids_up(empty: Store) -> None:
    """A lagging partition's events beside current ones: the kinds' time ranges hold more stored
    rows than the lookup reads, so the batch's own ids are looked up; the same events skipped."""
    events = platform()
    writer = StoreWriter(empty)
    assert writer.write(located(events[::2])) == (len(events[::2]), 0)
    with (
        patch.object(writer, "_present", wraps=writer._present) as present,
        patch("auditline.sinks.writer.LOOKUP_ROWS_PER_EVENT", 0),  # any stored row is more
    ):
        stored = writer.write(located(events, first_offset=50))
    assert stored == (len(events[1::2]), len(events[::2]))
    assert present.called
    assert counts(empty)[:2] == (len(events), len(events))


def test_an_event_deleted_from_the_log_is_stored_again_and_the_others_are_not(
    empty: Store,
) -> None:
    events = platform()
    writer = StoreWriter(empty)
    writer.write(located(events))
    newest = max(events, key=lambda e: e.envelope.event_time)
    empty.command(
        f"DELETE FROM `{empty.database}`.audit_log WHERE event_id = {{id:UUID}}",
        {"id": newest.envelope.event_id},
    )  # the newest of its kind: looked up, found absent
    assert writer.write(located(events)) == (1, len(events) - 1)
    assert counts(empty)[:2] == (len(events), len(events))


def test_inserts_describe_a_table_once_and_again_after_ddl(empty: Store) -> None:
    table = f"`{empty.database}`.probe"
    empty.command(f"CREATE TABLE {table} (a UInt8, b String) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(SinkError, match="insert into probe failed"):
        empty.insert("probe", ("a", "b"), [(0,)])  # a row short of a column
    empty.insert("probe", ("a", "b"), [(1, "x")])
    empty.insert("probe", ("a", "b"), [(2, "y"), (3, "z")])
    empty.command(f"ALTER TABLE {table} MODIFY COLUMN b Nullable(String)", mutations_sync=1)
    empty.insert("probe", ("a", "b"), [(4, None)])  # as the column is now, not as it was
    _, rows = empty.rows(f"SELECT a, b FROM {table} ORDER BY a")
    assert rows == [(1, "x"), (2, "y"), (3, "z"), (4, None)]


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_garbage_collection_waits_for_the_end_of_a_batch_and_a_disabled_one_stays_off() -> None:
    assert gc.isenabled()
    with pytest.raises(SinkError), gc_deferred():
        assert not gc.isenabled()
        raise SinkError("a failed batch")
    assert gc.isenabled()
    with gc_deferred():  # cyclic garbage past the threshold: collected at the end, not inside
        gc.collect()
        garbage = [weakref.ref(Cycle()) for _ in range(gc.get_threshold()[0] * 2)]
        assert all(ref() is not None for ref in garbage)
    assert all(ref() is None for ref in garbage)
    gc.disable()
    try:
        with gc_deferred():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_data_quality_alert_lands_in_its_table_and_the_log(empty: Store) -> None:
    from datetime import UTC, datetime

    from auditline.events import DataQualityAlert
    from tests.unit.alerting.samples import envelope

    start = datetime(2026, 11, 2, 4, tzinfo=UTC)
    alert = DataQualityAlert(
        envelope=envelope("worker/w1/alerts.quality"), alert_id="q-1", state="opened",
        severity="high", model_name="churn", model_version="3", feature="age",
        check="missing", rate=0.3, reference_rate=0.01, threshold=0.21, affected=150,
        window_count=500, window_start=start, window_end=start.replace(hour=5),
        training_run_id="run-7", statistics={"p_value": 1e-30, "z": 11.5},
    )  # fmt: skip
    assert StoreWriter(empty).write(located([alert])) == (1, 0)
    db = empty.database
    _, rows = empty.rows(
        f"SELECT feature, check, rate, reference_rate, affected, window_count, window_end, "
        f"statistics['p_value'] FROM `{db}`.quality_alerts FINAL"
    )
    end = start.replace(hour=5, tzinfo=None)  # the engine returns UTC without a zone
    assert rows == [("age", "missing", 0.3, 0.01, 150, 500, end, 1e-30)]
    _, kinds = empty.rows(f"SELECT kind, model_name FROM `{db}`.audit_log")
    assert kinds == [("DataQualityAlert", "churn")]


def _tables(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (the audit log's but ``ingested_at``, the time of the insert)."""
    tables = {}
    for name in COLUMNS:
        _, rows = store.rows(
            f"SELECT * EXCEPT (ingested_at) FROM `{store.database}`.`{name}` ORDER BY ALL"
            if name == "audit_log"
            else f"SELECT * FROM `{store.database}`.`{name}` ORDER BY ALL"
        )
        tables[name] = rows
    return tables


@pytest.fixture
def two_stores(store_settings: ClickHouseSettings) -> Iterator[tuple[Store, Store]]:
    """The store of the path through the models and the trusted decode's, merges stopped (a
    background merge of replaced rows would make the two differ by when it ran)."""
    stores = []
    for database in (store_settings.database, f"{store_settings.database}_trusted"):
        store = connect(store_settings.model_copy(update={"database": database}))
        migrate(store)
        _, names = store.rows(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": database}
        )
        for (name,) in names:
            store.command(f"SYSTEM STOP MERGES `{database}`.`{name}`")
        stores.append(store)
    yield stores[0], stores[1]
    for store in stores:
        store.close()


CODEC = SingleObjectCodec(Catalogue())


def _current(event: Event) -> Event:
    envelope = event.envelope.model_copy(update={"schema_version": CONTRACTS_VERSION})
    return event.model_copy(update={"envelope": envelope})


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(st.one_of(any_event(), any_event().map(_current)), max_size=12))
def test_the_trusted_decode_stores_every_table_as_the_models_did(
    two_stores: tuple[Store, Store], batch: list[Event]
) -> None:
    """The same messages, batch after batch, decoded through the models and inserted with the
    engine's default settings (the sink before the trusted decode) into one database, and by the
    sink's decoder and writer into another: every table holds the same rows. The batches carry
    every kind, both contracts layouts, repeats and replays, and the demo's and the lineage
    fixture's events come first."""
    models, trusted = two_stores
    decoder = decoder_for(CODEC)
    if not _tables(models)["audit_log"]:
        batch = demo_events() + platform() + batch
    batch = batch + batch[: len(batch) // 3]  # repeats within the batch
    messages = [CODEC.encode(event) for event in batch]
    reference = SingleObjectCodec(Catalogue(), trusted=False)  # fastavro and the models
    old = [Located(reference.decode(m), "t", 1, i) for i, m in enumerate(messages)]
    new = [decoder.item(m, "t", 1, i) for i, m in enumerate(messages)]
    with patch.object(writer, "UNIQUE_BY_SORTING_KEY", set()):  # inserted as before, too
        written = StoreWriter(models).write(old)
    assert StoreWriter(trusted).write(new) == written
    assert _tables(trusted) == _tables(models)
