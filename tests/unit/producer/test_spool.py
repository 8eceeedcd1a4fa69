from __future__ import annotations

import gc
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from auditline.producer.records import SpoolRecord, parse_frames
from auditline.producer.spool import Head, Spool, SpoolFullError, SpoolInUseError
from auditline.settings import SpoolSettings


def record(index: int, stream: str = "s", size: int = 50) -> SpoolRecord:
    digest = hashlib.sha256(b"%d" % index).digest()
    return SpoolRecord(
        topic="topic", key=b"k", value=b"v" * size, stream=stream, sequence=index,
        timestamp_ms=1000 + index, index=index, hash=digest,
    )  # fmt: skip


def killed(spool: Spool) -> None:
    """The process holding ``spool`` dies: nothing is closed, the OS drops its folder lock."""
    os.close(spool._lock_fd)


def settings(**overrides: object) -> SpoolSettings:
    return SpoolSettings(**{"segment_bytes": 1000, "fsync": "never", **overrides})  # type: ignore[arg-type]


def test_frames_round_trip_and_a_torn_tail_is_left_out() -> None:
    frames = record(0).frame() + record(1).frame()
    records, intact = parse_frames(frames + record(2).frame()[:-3])
    assert [r.index for r in records] == [0, 1]
    assert intact == len(frames)
    corrupted = bytearray(frames)
    corrupted[-1] ^= 0xFF
    assert [r.index for r in parse_frames(bytes(corrupted))[0]] == [0]


def test_one_writer_per_spool_folder(tmp_path: Path) -> None:
    """Two producers with one service and instance would fork the chains they continue."""
    spool = Spool(tmp_path, settings())
    spool.append([record(0)])
    with pytest.raises(SpoolInUseError, match="AUDITLINE_PRODUCER__INSTANCE"):
        Spool(tmp_path, settings())
    assert spool.next_index == 1  # the refused open changed nothing
    spool.close()
    reopened = Spool(tmp_path, settings())
    assert [r.index for r in reopened.pending()] == [0]


def test_records_survive_reopen_and_acks_drop_whole_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, settings())
    for i in range(40):
        spool.append([record(i)])
    segments_before = sorted(tmp_path.glob("*.seg"))
    for i in range(20):
        spool.ack(i)
    assert spool.low == 20
    segments_after = sorted(tmp_path.glob("*.seg"))
    assert len(segments_after) < len(segments_before)
    assert 10 < int(segments_after[0].stem) <= 20, "only segments wholly delivered are deleted"
    spool.close()
    reopened = Spool(tmp_path, settings())
    assert [r.index for r in reopened.pending()] == list(range(20, 40))
    assert reopened.next_index == 40
    assert reopened.heads["s"] == Head(40, record(39).hash.hex())


def test_out_of_order_acks_advance_the_watermark_over_the_contiguous_prefix(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, settings())
    spool.append([record(i) for i in range(5)])
    for i in (3, 1, 4):
        spool.ack(i)
    assert spool.low == 0 and spool.unacked == 2
    spool.ack(0)
    assert spool.low == 2
    spool.ack(2)
    assert spool.low == 5 and spool.unacked == 0


def test_chain_heads_survive_deletion_of_every_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, settings())
    for i in range(30):
        spool.append([record(i, stream=f"s{i % 3}")])
    for i in range(30):
        spool.ack(i)
    spool.close()
    reopened = Spool(tmp_path, settings())
    assert list(reopened.pending()) == []
    assert reopened.next_index == 30
    for s in range(3):
        last = max(i for i in range(30) if i % 3 == s)
        assert reopened.heads[f"s{s}"] == Head(last + 1, record(last).hash.hex())


def test_a_torn_write_from_a_crash_is_cut_on_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path, settings(segment_bytes=10_000))
    spool.append([record(i) for i in range(3)])
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    with segment.open("ab") as fh:
        fh.write(record(3).frame()[:10])
    reopened = Spool(tmp_path, settings(segment_bytes=10_000))
    assert [r.index for r in reopened.pending()] == [0, 1, 2]
    reopened.append([record(3)])
    assert [r.index for r in reopened.pending()] == [0, 1, 2, 3]


def test_full_spool_raises_at_once_in_raise_mode(tmp_path: Path) -> None:
    spool = Spool(tmp_path, settings(max_bytes=1000, on_full="raise"))
    spool.append([record(0, size=400)])
    spool.append([record(1, size=400)])
    with pytest.raises(SpoolFullError, match="nothing was dropped"):
        spool.append([record(2, size=400)])
    assert spool.next_index == 2


def test_full_spool_blocks_until_acks_free_room(tmp_path: Path) -> None:
    spool = Spool(tmp_path, settings(max_bytes=1200, segment_bytes=400, emit_timeout_ms=5000))
    for i in range(3):
        spool.append([record(i, size=300)])
    threading.Timer(0.2, lambda: [spool.ack(i) for i in range(3)]).start()
    spool.append([record(3, size=300)])  # waits for the timer's acks
    assert spool.next_index == 4


def test_full_spool_gives_up_after_the_emit_timeout(tmp_path: Path) -> None:
    spool = Spool(tmp_path, settings(max_bytes=800, emit_timeout_ms=100))
    spool.append([record(0, size=600)])
    with pytest.raises(SpoolFullError):
        spool.append([record(1, size=600)])


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_every_fsync_policy_persists(tmp_path: Path, policy: str) -> None:
    spool = Spool(tmp_path, settings(fsync=policy))
    spool.append([record(i) for i in range(3)])
    killed(spool)
    assert [r.index for r in Spool(tmp_path, settings(fsync=policy)).pending()] == [0, 1, 2]


def test_read_from_starts_mid_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, settings(segment_bytes=10**7))
    spool.append([record(i) for i in range(2000)])
    assert [r.index for r in spool.read_from(1500)][:3] == [1500, 1501, 1502]


def test_oldest_pending_age_follows_acknowledgements_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, settings(segment_bytes=1_000_000))
    assert spool.oldest_pending_s() == 0.0  # nothing written
    spool.append([record(i) for i in range(600)])
    time.sleep(0.2)
    later = time.time()
    spool.append([record(600), record(601)])  # 600 records on: a new sample of the time
    assert spool.oldest_pending_s(later + 5) >= 5.2
    spool.ack(*range(600))
    assert spool.oldest_pending_s(later + 5) < 5.0  # record 600 was appended after ``later``
    killed(spool)
    # the watermark is written lazily: after a crash all of them wait for the producer's
    # recovery, aged from their timestamps (record 0's: 1.000 s)
    reopened = Spool(tmp_path, settings(segment_bytes=1_000_000))
    assert reopened.oldest_pending_s(10.0) == pytest.approx(9.0)
    reopened.ack(*range(602))
    assert reopened.oldest_pending_s() == 0.0 and reopened.unacked == 0


@settings_(max_examples=200, deadline=None)
@given(
    batches=st.lists(st.lists(st.integers(0, 59), max_size=25), max_size=12),
)
def test_acks_in_any_order_and_repeated_keep_the_watermark_exact(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[int]]
) -> None:
    spool = Spool(tmp_path_factory.mktemp("acks"), settings(segment_bytes=10**6))
    spool.append([record(i) for i in range(60)])
    acked: set[int] = set()
    for batch in batches:
        spool.ack(*batch)
        acked.update(batch)
        low = next(i for i in range(61) if i not in acked)
        assert spool.low == low
        assert spool.unacked == 60 - len(acked)
        assert spool.is_acked(low - 1) if low else True
    spool.close()


def test_append_writes_a_batch_with_one_write_and_always_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, settings(fsync="always", segment_bytes=10**6))
    calls: list[str] = []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(os, "write", lambda fd, data: calls.append("write") or real_write(fd, data))
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    spool.append([record(i) for i in range(500)])
    assert calls == ["write", "fsync"]
    monkeypatch.undo()
    spool.close()


def test_the_interval_policy_fsyncs_in_the_background_within_the_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = threading.Event()
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.set() or real_fsync(fd))
    spool = Spool(tmp_path, settings(fsync="interval", fsync_interval_ms=20))
    started = time.monotonic()
    spool.append([record(0)])
    assert not synced.is_set()  # not in append: the emitting thread does not wait for the disk
    assert synced.wait(2) and time.monotonic() - started < 1.0
    synced.clear()
    time.sleep(0.1)
    assert not synced.is_set()  # nothing written since: nothing to fsync
    spool.close()


def test_a_failed_background_fsync_is_raised_by_the_next_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, settings(fsync="interval", fsync_interval_ms=60_000))
    spool.append([record(0)])

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        spool.sync_if_written()  # the syncer thread's call: it logs this
    monkeypatch.undo()
    with pytest.raises(OSError, match=r"fsync of the spool .* failed: Input/output error"):
        spool.append([record(1)])  # the emitter learns that durability was lost
    spool.append([record(1)])  # once said, writing goes on (and the data is fsynced again)
    spool.sync_if_written()
    spool.close()


def test_the_syncer_ends_with_its_spool(tmp_path: Path) -> None:
    def syncers() -> list[str]:
        names = (t.name for t in threading.enumerate())
        return sorted(
            n.rsplit("/", 1)[-1] for n in names if n.startswith(f"auditline-spool-sync {tmp_path}")
        )

    closed = Spool(tmp_path / "a", settings(fsync="interval", fsync_interval_ms=10))
    dropped = Spool(tmp_path / "b", settings(fsync="interval", fsync_interval_ms=10))
    assert syncers() == ["a", "b"]
    closed.close()
    del dropped  # never closed (a test, a crash): the thread holds it weakly
    gc.collect()
    deadline = time.monotonic() + 2
    while syncers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert syncers() == []


def test_a_zero_interval_fsyncs_in_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    spool = Spool(tmp_path, settings(fsync="interval", fsync_interval_ms=0))
    spool.append([record(0)])
    assert len(fsyncs) == 1
    monkeypatch.undo()
    spool.close()
