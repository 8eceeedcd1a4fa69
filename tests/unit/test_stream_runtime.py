"""The worker's faust monitor keeps no per-record statistics, and the app is built with it."""

from __future__ import annotations

import inspect

import faust
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from faust.types.tuples import Message

from streams import runtime
from streams.runtime import CountedBuffer, UncountedMonitor


def test_the_per_record_hooks_count_nothing_and_the_rest_still_counts() -> None:
    app = faust.App("runtime-test", broker="kafka://localhost:1", Monitor=UncountedMonitor)
    monitor = app.monitor
    assert isinstance(monitor, UncountedMonitor)
    tp = TP("t", 0)
    message = Message(
        topic="t", partition=0, offset=1, timestamp=0.0, timestamp_type=0, headers=[],
        key=b"", value=b"", checksum=None, tp=tp,
    )  # fmt: skip
    monitor.on_message_in(tp, 1, message)
    assert monitor.on_stream_event_in(tp, 1, object(), object()) is None  # type: ignore[arg-type,func-returns-value]
    monitor.on_message_out(tp, 1, message)
    monitor.track_tp_end_offset(tp, 7)
    assert not monitor.tp_end_offsets
    assert (monitor.messages_received_total, monitor.events_total, message.time_in) == (0, 0, None)
    assert tp in monitor.stream_inbound_time  # read by faust's commit livelock detector
    monitor.on_tp_commit({tp: 5})  # not per record: kept
    assert monitor.tp_committed_offsets == {tp: 5}


def test_the_producer_buffer_counts_its_pending_queue_without_reading_settings() -> None:
    app = faust.App("runtime-test", broker="kafka://localhost:1")
    runtime.install(app)
    buffer = app.producer.buffer
    assert isinstance(buffer, CountedBuffer)
    assert buffer.app is app and buffer.size == 0
    buffer.pending.put_nowait(object())
    assert buffer.size == 1
    # pinned: the faust method it replaces reads the setting on every call, and gives the same
    assert "producer_threaded" in inspect.getsource(ProducerBuffer.size.fget)  # type: ignore[attr-defined]
    assert ProducerBuffer.size.fget(buffer) == 1  # type: ignore[attr-defined]


def test_a_threaded_producer_keeps_fausts_buffer() -> None:
    app = faust.App("runtime-test", broker="kafka://localhost:1", producer_threaded=True)
    runtime.install(app)
    assert not isinstance(app.producer.buffer, CountedBuffer)
