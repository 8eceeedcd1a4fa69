"""When the cyclic garbage collector runs in auditline's long-running processes (pure policy).

Both the sink and the worker hold thousands of decoded events alive while they handle a batch;
a collection that starts meanwhile traverses all of them again, and CPython starts one every few
hundred allocations. So collections run between batches instead: ``gc_deferred`` around a
batch (the sink), or ``collect_due`` from a timer with automatic collection off (the worker,
whose agents interleave on one event loop). Reference counting frees a batch's objects when it
ends either way; only cycles wait, never longer than a batch or a timer period.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_deferred() -> Iterator[None]:
    """No cyclic garbage collection inside: the collection that came due runs at the end, once a
    batch's objects are freed (the sink: a quarter of its CPU, measured with bench/sink.py)."""
    if not gc.isenabled():  # the process decided otherwise
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        collect_due()


def collect_due() -> None:
    """The collection the interpreter would have started by now: the oldest generation past
    its threshold (counts grow while automatic collection is off)."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    if not thresholds[0]:  # collection switched off for good
        return
    due = [g for g in (2, 1, 0) if thresholds[g] and counts[g] > thresholds[g]]  # 0: not by count
    if due:
        gc.collect(due[0])
