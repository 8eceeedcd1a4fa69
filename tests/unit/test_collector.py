"""Garbage collection between batches (auditline/collector.py)."""

from __future__ import annotations

import gc

import pytest

from auditline import collector


def test_collect_due_runs_the_oldest_generation_past_its_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[int] = []
    setattr_ = monkeypatch.setattr
    setattr_(gc, "collect", lambda generation=2: ran.append(generation) or 0)
    setattr_(gc, "get_threshold", lambda: (700, 10, 10))
    setattr_(gc, "get_count", lambda: (800, 11, 3))
    collector.collect_due()
    setattr_(gc, "get_count", lambda: (10, 0, 0))
    collector.collect_due()  # nothing due
    setattr_(gc, "get_threshold", lambda: (700, 10, 0))  # a generation not collected by count
    setattr_(gc, "get_count", lambda: (800, 0, 5))
    collector.collect_due()
    assert ran == [1, 0]
