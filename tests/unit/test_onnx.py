"""AuditedModel on a real ONNX model built here (never downloaded) and real onnxruntime."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import VIRGINIA
from auditline.errors import ConfigError
from auditline.events import Prediction, PredictionBatch
from auditline.onnx import AuditedModel
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings

WEIGHTS = np.array([[0.5], [-1.0], [2.0]], dtype=np.float32)
BIAS = np.array([0.1], dtype=np.float32)


def logistic_model(path: Path) -> Path:
    """y = sigmoid(x · W + b), x of width 3: a tiny churn-like scorer."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["score"]),
        ],
        "churn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(WEIGHTS, "W"), numpy_helper.from_array(BIAS, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def expected(rows: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(rows @ WEIGHTS + BIAS)))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Callable[..., AuditedModel], InProcessBroker, AuditProducer]:
    broker = InProcessBroker()
    settings = AuditlineSettings(
        producer={"service": "scoring", "instance": "s1", "transport": "memory"},
        spool={"path": str(tmp_path / "spool"), "fsync": "never"},
    )
    producer = AuditProducer(settings, transport=InProcessTransport(broker))
    path = logistic_model(tmp_path / "churn.onnx")

    def make(**kwargs: object) -> AuditedModel:
        return AuditedModel(
            path, producer=producer, model="churn", version="7", location=VIRGINIA,
            feature_names=["tenure", "complaints", "usage"], **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip

    return make, broker, producer


def decoded(broker: InProcessBroker) -> list:
    codec = SingleObjectCodec(Catalogue())
    return [codec.decode(m.value) for m in broker.read("auditline.predictions")]


def test_single_prediction_is_run_and_recorded(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make, broker, producer = setup
    model = make(batch=1)  # one Prediction event per call
    out = model.predict({"tenure": 2.0, "complaints": 1.0, "usage": 0.5}, subject_jurisdiction="DE")
    assert np.allclose(out, expected(np.array([[2.0, 1.0, 0.5]], dtype=np.float32))[0])
    assert producer.flush(5)
    (event,) = decoded(broker)
    assert isinstance(event, Prediction)
    assert event.score == pytest.approx(float(out[0]), rel=1e-6)
    assert event.numeric_features == {"tenure": 2.0, "complaints": 1.0, "usage": 0.5}
    assert event.subject_jurisdiction == "DE" and event.model_version == "7"
    assert (
        event.artifact_digest == hashlib.sha256((tmp_path / "churn.onnx").read_bytes()).hexdigest()
    )


def test_single_predictions_are_gathered_into_batches(setup) -> None:  # type: ignore[no-untyped-def]
    make, broker, producer = setup
    model = make()  # default: PredictionBatch events of up to 1,000 predictions or 200 ms
    rows = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    outs = [model.predict(dict(zip(["tenure", "complaints", "usage"], r.tolist(), strict=True)),
                          subject_jurisdiction="DE" if i % 2 else None)
            for i, r in enumerate(rows)]  # fmt: skip
    assert producer.flush(5)
    (batch,) = decoded(broker)
    assert isinstance(batch, PredictionBatch) and batch.count == 5
    assert np.allclose(batch.numeric_features[2].values, rows[:, 2])
    assert np.allclose(batch.scores, [float(o[0]) for o in outs], atol=1e-6)
    assert batch.subject_jurisdictions == (None, "DE", None, "DE", None)
    assert batch.model_version == "7" and batch.artifact_digest is not None


def test_batch_call_emits_one_columnar_event(setup) -> None:  # type: ignore[no-untyped-def]
    make, broker, producer = setup
    rows = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)
    out = make().predict_batch(rows, subject_jurisdictions=["FR"] * 64)
    assert np.allclose(out, expected(rows), atol=1e-6)
    assert producer.flush(5)
    (batch,) = decoded(broker)
    assert isinstance(batch, PredictionBatch) and batch.count == 64
    assert [c.name for c in batch.numeric_features] == ["tenure", "complaints", "usage"]
    assert np.allclose(batch.numeric_features[1].values, rows[:, 1])
    assert np.allclose(batch.scores, out[:, 0], atol=1e-6)
    assert batch.subject_jurisdictions == ("FR",) * 64


def test_ids_an_outcome_can_name(setup) -> None:  # type: ignore[no-untyped-def]
    """A prediction given its id is emitted at once as a Prediction with it (not gathered); a
    batch given its id keeps it: what an Outcome names for model quality."""
    make, broker, producer = setup
    model = make()  # gathers single predictions by default
    model.predict([1.0, 0.0, 2.0])
    model.predict([1.0, 0.0, 2.0], prediction_id="p-17")
    model.predict_batch(np.ones((3, 3), dtype=np.float32), batch_id="b-9")
    assert producer.flush(5)
    events = decoded(broker)
    assert [(type(e).__name__, getattr(e, "prediction_id", None) or e.batch_id) for e in events
            if not isinstance(e, PredictionBatch) or e.batch_id == "b-9"] == [
        ("Prediction", "p-17"), ("PredictionBatch", "b-9"),
    ]  # fmt: skip
    assert sum(e.count for e in events if isinstance(e, PredictionBatch)) == 4  # 1 gathered


def test_sampling_records_about_the_configured_share(setup) -> None:  # type: ignore[no-untyped-def]
    make, broker, producer = setup
    rows = np.zeros((2000, 3), dtype=np.float32)
    make(sample_rate=0.25, seed=7).predict_batch(rows)
    assert producer.flush(5)
    (batch,) = decoded(broker)
    assert batch.sample_rate == 0.25
    assert 400 < batch.count < 600


def test_bad_feature_input_says_what_is_missing(setup) -> None:  # type: ignore[no-untyped-def]
    make, _, _ = setup
    with pytest.raises(ConfigError, match=r"missing.*usage"):
        make().predict({"tenure": 1.0, "complaints": 0.0})
    with pytest.raises(ConfigError, match="sample_rate"):
        make(sample_rate=0)
