"""Outcomes go through the SDK's generic path: validated, sealed, on the outcomes topic."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.errors import InvalidEventError
from auditline.events import Outcome
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker


def test_emit_an_outcome_of_a_batch_row(
    make_producer: Callable[..., AuditProducer], broker: InProcessBroker
) -> None:
    producer = make_producer()
    producer.emit(Outcome, model_name="churn", model_version="3", batch_id="b4", row=1, label="1")
    producer.flush()
    (message,) = broker.read("auditline.outcomes")
    event = SingleObjectCodec(Catalogue()).decode(message.value)
    assert isinstance(event, Outcome) and (event.batch_id, event.row, event.label) == ("b4", 1, "1")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"prediction_id": "p1", "batch_id": "b", "row": 0, "label": "1"}, "exactly one"),
        ({"label": "1"}, "exactly one"),
        ({"batch_id": "b", "label": "1"}, "both batch_id and row"),
        ({"prediction_id": "p1"}, "label or its value"),
    ],
)
def test_an_outcome_names_one_prediction_and_a_truth(
    make_producer: Callable[..., AuditProducer], fields: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        make_producer().emit(Outcome, model_name="churn", model_version="3", **fields)
