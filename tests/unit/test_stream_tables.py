"""The worker's tables: its own writes, read back from a global table's changelog, never replace
what it wrote since (no stale state); other writers' records and earlier runs' are applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
import pytest
from auditline.streams.tables import JsonTable, WriterAwareGlobalTable, new_writer_tag, payload


@dataclass
class Message:
    value: bytes | None
    partition: int = 0


@dataclass
class Record:
    """A changelog record as faust hands it to a table."""

    key: str
    value: str | None

    @property
    def message(self) -> Message:
        return Message(None if self.value is None else self.value.encode())


def own_state(table: Any) -> JsonTable:
    """A worker's JsonTable over the table's store (what its writes put there; no broker here,
    so the changelog records are handed to the table by the test)."""
    state = JsonTable(table.data, writer=new_writer_tag())
    table.writer_tag = state.writer
    return state


@pytest.fixture
def table() -> Any:
    app = faust.App(
        f"t-{new_writer_tag()[1:9]}", store="memory://", GlobalTable=WriterAwareGlobalTable
    )
    return app.GlobalTable("state", default=None, key_type=str, value_type=str,
                           use_partitioner=True, recovery_buffer_size=1)  # fmt: skip


def test_values_are_tagged_with_their_writer_and_read_without_it() -> None:
    stored: dict[str, Any] = {"old": '{"untagged":1}'}  # written before tags: plain JSON
    state = JsonTable(stored, writer=new_writer_tag())
    state["head"] = {"next_sequence": 3}
    state.flush()
    assert stored["head"].startswith(state.writer) and stored["head"].endswith("}")
    assert state["head"] == {"next_sequence": 3} and state["old"] == {"untagged": 1}
    assert payload(stored["head"]) == '{"next_sequence":3}'


def test_the_echo_of_an_older_own_write_does_not_take_the_table_back(table: Any) -> None:
    state = own_state(table)
    state["head"] = {"next_sequence": 1}
    state.flush()
    echo = Record("head", table.data["head"])
    state["head"] = {"next_sequence": 2}
    state.flush()
    table.apply_changelog_batch([echo])  # the first write comes back after the second
    assert state["head"] == {"next_sequence": 2}


def test_other_writers_and_earlier_runs_are_applied(table: Any) -> None:
    state = own_state(table)
    other = JsonTable({}, writer=new_writer_tag())  # another worker, or this one before a restart
    table.apply_changelog_batch([Record("asset:ds", other.writer + '{"pins":["DE"]}'),
                                 Record("legacy", '{"v":1}')])  # fmt: skip
    assert state["asset:ds"] == {"pins": ["DE"]} and state["legacy"] == {"v": 1}


def test_a_deletion_echo_spares_a_value_written_after_it(table: Any) -> None:
    state = own_state(table)
    state["held"] = [1]
    state.flush()
    state.pop("held")
    state.flush()
    state["held"] = [2]  # held again before the deletion came back
    state.flush()
    table.apply_changelog_batch([Record("held", None)])
    assert state["held"] == [2]
    other = new_writer_tag()
    table.apply_changelog_batch([Record("gone", other + "[3]"), Record("gone", None)])
    assert "gone" not in state  # another writer's deletion is applied
