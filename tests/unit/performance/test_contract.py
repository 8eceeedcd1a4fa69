"""The detector's alert bodies are valid PerformanceAlert events end to end: through the codec,
into their table row and the subscribers' view; an Outcome's row names its prediction as the
predictions table does."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from auditline.sinks.rows import COLUMNS, derived_rows

from auditline.alerting.subscriptions import Filters
from auditline.alerting.view import AlertView
from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import Outcome, PerformanceAlert
from auditline.integrity.chain import seal
from auditline.testing.outcome_streams import T0, envelope
from tests.unit.performance.test_detector import ACCURACIES, detector, stream

CODEC = SingleObjectCodec(Catalogue())


def test_alert_bodies_round_trip_and_reach_their_table_and_view() -> None:
    found = detector()
    alerts = [a for e in stream(np.random.default_rng(3), ACCURACIES) for a in found.observe(e)]
    body = alerts[0]
    event = seal(PerformanceAlert(envelope=envelope(T0, "worker/w1/alerts.performance"), **body))
    assert CODEC.decode(CODEC.encode(event)) == event
    ((table, row),) = derived_rows(event)
    assert table == "performance_alerts" and len(row) == len(COLUMNS[table])
    view = AlertView.of(event)
    assert view is not None and (view.kind, view.rule, view.state) == (
        "performance", "accuracy", "opened",
    )  # fmt: skip
    assert view.title.startswith("model quality opened on accuracy: 0.69")
    assert view.title.endswith("(threshold 0.85, training 0.9; 1000 outcomes, coverage 100%)")
    assert Filters(kinds=("performance",), models=("m:1",)).matches(view)


def test_an_outcome_row_names_its_prediction_as_the_predictions_table() -> None:
    when = T0 + timedelta(hours=1)
    for fields, prediction_id in (
        ({"batch_id": "b4", "row": 1}, "b4:1"), ({"prediction_id": "p-9"}, "p-9"),
    ):  # fmt: skip
        event = seal(
            Outcome(
                envelope=envelope(when, "labels/l1/outcomes"),
                model_name="m",
                model_version="1",
                label="1",
                **fields,
            )
        )  # type: ignore[arg-type]
        assert CODEC.decode(CODEC.encode(event)) == event
        ((table, row),) = derived_rows(event)
        assert table == "outcomes" and row[COLUMNS[table].index("prediction_id")] == prediction_id
