"""The stream processors' head table, as its changelog holds it, reads back as an anchor: the
format the worker writes (streams) and the one ``verify --broker`` reads (core) are one."""

from __future__ import annotations

from auditline.streams.integrity import HeadTable
from auditline.streams.tables import JsonTable, new_writer_tag

from auditline.integrity.broker import head_anchor, heads_changelog
from auditline.integrity.verify import StreamHead


def test_a_head_written_by_the_worker_is_an_anchor() -> None:
    store: dict[str, str] = {}
    table = JsonTable(store, writer=new_writer_tag())
    heads = HeadTable(table)
    assert heads.judging("svc/i1/assets", "auditline.assets:0", 41)
    heads["svc/i1/assets"] = StreamHead(5, "ab" * 32)
    heads.judged()
    table.flush()
    raw = store["svc/i1/assets"]
    assert raw.startswith(table.writer)  # tagged, as the changelog carries it
    anchor = head_anchor(b"svc/i1/assets", raw.encode(), (1, 1_764_590_400_000))
    assert anchor is not None
    assert (anchor.stream, anchor.sequence, anchor.hash) == ("svc/i1/assets", 4, "ab" * 32)
    assert anchor.at.isoformat() == "2025-12-01T12:00:00+00:00"


def test_tombstones_and_foreign_values_anchor_nothing() -> None:
    assert head_anchor(b"s", None, (0, 0)) is None
    assert head_anchor(b"s", b"not json", (0, 0)) is None
    assert head_anchor(b"s", b'{"next_sequence": 0, "last_hash": ""}', (0, 0)) is None


def test_the_changelog_is_named_as_faust_names_it() -> None:
    assert heads_changelog("acme") == "acme-streams-stream-heads-changelog"
