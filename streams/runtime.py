"""Process-level settings of the worker: the garbage collector, the root logger, faust's monitor.

Each was found by profiling a worker at a steady load; none changes what it computes. The logger
also keeps auditline's own format (``auditline --log-format json``).
"""

from __future__ import annotations

import gc
import logging
from time import monotonic
from typing import Any

import faust
from faust.sensors.monitor import Monitor
from faust.transport.drivers import aiokafka as driver
from faust.transport.producer import ProducerBuffer

from auditline.logs import configure

GC_INTERVAL_S = 1.0
"""How often the worker runs the garbage collection that came due (``collect_due``)."""


def tune_gc() -> None:
    """Collect garbage between batches, from a timer, never in the middle of one.

    Each record allocates many short-lived objects (the decoded record, the event models) and a
    batch keeps a thousand of them alive: with CPython's default thresholds the collector ran
    every 700 allocations (1,200 collections over 30,000 events, a tenth of the worker's time),
    and with a threshold of 20,000 it still traversed every batch in flight. The objects of the
    start-up (modules, the app, its tables) are frozen out of collections, automatic collection
    is off, and ``collect_due`` runs every ``GC_INTERVAL_S`` (``Processors``): same events,
    A/B on this machine, 137-144 -> 132-137 µs of CPU per audit event, 2 MB more resident.
    """
    gc.freeze()
    gc.disable()


class QuietWorker(faust.Worker):
    """faust's worker without its start-up spinner.

    At a log level of WARN or above, faust sets the root logger to DEBUG so that a terminal
    spinner turns on every log record: every debug call of aiokafka, faust and mode (several per
    fetch) then built a record for nothing, 5% of the worker's time at 1,000 events/s. Here the
    root logger keeps the level asked for (``auditline worker --loglevel``).

    faust then installs its own handler and format on the root logger; auditline's replace them,
    so the worker's lines (faust's, aiokafka's and librdkafka's included) look like every other
    command's: text, or one JSON object a line with ``log_format = "json"``. Standard output
    stays standard output (faust's ``worker`` command would turn prints into warning records):
    the worker's ready line is printed like the sink's.
    """

    log_format = "text"

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)
        configure(logging.getLevelName(level), self.log_format, force=True)
        self.redirect_stdouts = False  # read by mode's Worker right after this hook


class UncountedMonitor(Monitor):
    """faust's monitor without its per-record and per-table-access statistics.

    faust adds its monitor to every app's sensors and calls it as each record comes in, enters
    and leaves a stream and is acknowledged, and on every table read and write: counters, time
    stamps and a latency sample per record, about 3 µs of a worker's CPU per record. Only faust's
    web views read them, and the worker runs without them (``web_enabled=False``); its figures
    are its own Prometheus metrics (``streams/health.py``). Kept: when each partition's stream
    last took a record (what faust's commit livelock detector reads), rebalances, commits and
    the rest of the monitor's statistics.
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        """Only when ``tp``'s stream last took a record: faust's commit livelock detector reads
        it (``verify_event_path``: without it, it reports every partition with a backlog as
        a stream that never started and skips its check of commits not advancing)."""
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        """Called for every record fetched; only faust's web views read what it keeps."""
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None


class CountedBuffer(ProducerBuffer):
    """faust's producer buffer, its size read without faust's settings.

    The conductor awaits the buffer's ``wait_until_ebb`` before it delivers each record, which
    reads ``size``; in faust-streaming 0.15 ``size`` first reads ``app.conf.producer_threaded``
    through faust's settings object (a slow attribute lookup), 3% of a worker's CPU. Without a
    threaded producer (``Producer`` uses this buffer only then) the size is the length of the
    pending queue, as faust's own ``size`` returns it."""

    @property
    def size(self) -> int:
        return len(self.pending._queue)  # type: ignore[attr-defined]


class Producer(driver.Producer):
    """faust's aiokafka producer with a ``CountedBuffer`` (``app.transport.Producer``)."""

    def __init__(self, transport: Any, loop: Any = None, **kwargs: Any) -> None:
        super().__init__(transport, loop=loop, **kwargs)
        if not self.app.conf.producer_threaded:  # the buffer is started with the producer
            self.buffer = CountedBuffer(loop=self.loop, beacon=self.beacon)
            self.buffer.app = self.app


def install(app: Any) -> None:
    """Make ``app`` create its producer as a ``Producer`` (before anything produces)."""
    app.transport.Producer = Producer
