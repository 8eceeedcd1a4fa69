"""The worker's drift stages without a broker: partials from prediction records, merged once
each (a replayed partial is skipped), state reloaded from the table after a rebalance."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from auditline.streams import drift as faust_stages

from auditline.drift.offline import DriftSettings
from auditline.events import PredictionBatch
from auditline.testing import drift_streams as synthetic

REF = synthetic.reference(np.random.default_rng(3), rows=2_000)


class Table(dict[str, Any]):
    """A dict standing in for the worker's JSON tables (get / [] / in)."""


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


def batch(i: int, size: int = 100) -> PredictionBatch:
    rng = np.random.default_rng(i)
    body = {
        "envelope": {"event_id": f"00000000-0000-4000-8000-{i:012d}",
                     "event_time": f"2026-11-02T00:{i:02d}:00+00:00",
                     "producer": {"service": "s", "instance": "i", "location": {"country": "DE"}},
                     "stream": "s", "sequence": i, "prev_hash": "0" * 64, "hash": "0" * 64},
        "batch_id": str(i), "model_name": "m", "model_version": "1",
        "location": {"country": "DE"}, "count": size, "sample_rate": 1.0, "latency_ms": 1.0,
        "numeric_features": [{"name": f"x{j}", "values": rng.normal(size=size).tolist()}
                             for j in range(synthetic.NUMERIC)],
    }  # fmt: skip
    return PredictionBatch.model_validate(body)


def test_partials_merge_once_and_survive_a_rebalance() -> None:
    references = faust_stages.References(Table({"m/1": REF.to_json()}))
    table = Table()
    settings = DriftSettings.model_validate({"defaults": {"window_seconds": 60,
                                                          "allowed_lateness_seconds": 0}})  # fmt: skip
    states = faust_stages.DriftStates(table, references, settings)
    partials = [faust_stages.partial_of(batch(i), Message("p", 0, i), references) for i in range(3)]
    assert all(p is not None and p[0] == "m/1" for p in partials)
    records = [p[1] for p in partials if p is not None]
    # a source batch's partials of a version travel as one message, a JSON list in order; a
    # message of one partial alone (the form before) still reads
    decoded = faust_stages.partials_in(b"[%s]" % b",".join(records))
    assert decoded == [json.loads(r) for r in records]
    assert faust_stages.partials_in(records[0]) == decoded[:1]
    states.merge("m/1", decoded[0], generation=1)
    states.merge("m/1", decoded[1], generation=1)
    states.merge("m/1", decoded[1], generation=1)  # a replay: skipped
    detector, high = states._cache["m/1"]
    assert high == {"p:0": 1}
    t0 = 1_793_577_600_000  # 2026-11-02T00:00Z: minute 0 was released when minute 1 arrived
    assert detector.windows.released_through_ms == t0 + 60_000
    assert {k - t0: w.predictions for k, w in detector.windows.open.items()} == {60_000: 100}
    states.flush()  # end of the batch: the state goes to the table
    assert table["m/1"]["hw"] == {"p:0": 1}
    # a rebalance: the cache is dropped and the state comes back from the table
    states.merge("m/1", decoded[0], generation=2)  # replayed after the rebalance: skipped
    states.merge("m/1", decoded[2], generation=2)
    detector, high = states._cache["m/1"]
    assert high == {"p:0": 2} and sorted(detector.windows.open) == [t0 + 120_000]
    assert (
        faust_stages.partial_of(batch(5), Message("p", 0, 5), faust_stages.References(Table()))
        is None
    )  # no reference
