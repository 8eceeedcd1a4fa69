"""Single predictions at volume: the common case (the very names of the last call, plain values)
takes a shorter path than a call checked field by field; both buffer the same values and emit the
same batches, concurrent callers lose and duplicate nothing, and ``AuditedModel.predict`` reads
scores and labels as ``predict_batch`` does."""

from __future__ import annotations

import enum
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.errors import ConfigError, InvalidEventError
from auditline.events import PredictionBatch
from auditline.onnx import AuditedModel
from auditline.producer import AuditProducer
from auditline.producer import predictions as module
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.producer.predictions import PredictionBuffer
from auditline.settings import AuditlineSettings

MODEL = {"model_name": "churn", "model_version": "3", "location": {"country": "DE"}}
NAMES = ("tenure", "complaints", "usage")
CODEC = SingleObjectCodec(Catalogue())


class Tier(str, enum.Enum):  # noqa: UP042 - its str() is "Tier.TENURE", not its value
    TENURE = "tenure"


Plan = enum.StrEnum("Plan", {"PRO": "pro"})


@pytest.fixture
def make_buffer(
    tmp_path: Path,
) -> Iterator[Callable[..., tuple[PredictionBuffer, InProcessBroker]]]:
    producers: list[AuditProducer] = []

    def make(**options: Any) -> tuple[PredictionBuffer, InProcessBroker]:
        broker = InProcessBroker()
        settings = AuditlineSettings(
            producer={"service": "scoring", "instance": f"s{len(producers)}", "transport": "memory"},
            spool={"path": str(tmp_path / f"spool{len(producers)}"), "fsync": "never"},
        )  # fmt: skip
        producer = AuditProducer(settings, transport=InProcessTransport(broker))
        producers.append(producer)
        return producer.prediction_buffer(**{**MODEL, "max_delay_ms": 60_000, **options}), broker

    yield make
    for producer in producers:
        producer.close(timeout=1)


def written(buffer: PredictionBuffer, broker: InProcessBroker) -> list[dict[str, Any]]:
    """The emitted batches' fields but their ids and envelopes, once all are delivered."""
    assert buffer.producer.flush(5)
    batches = [CODEC.decode(m.value) for m in broker.read("auditline.predictions")]
    assert all(isinstance(b, PredictionBatch) for b in batches)
    return [b.model_dump(exclude={"envelope", "batch_id"}) for b in batches]


def fresh(values: dict[str, Any]) -> dict[str, Any]:
    """The same features under new key objects: never the buffer's common case."""
    return {"".join(list(name)): value for name, value in values.items()}


def calls() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Features and options of predictions: plain ones and the others, in one model's names."""
    odd: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"tenure": None, "complaints": 1.0, "usage": 2.0}, {}),  # a null
        ({"tenure": 3, "complaints": np.float32(0.5), "usage": True}, {"score": 1}),  # converted
        ({"tenure": "1.5", "complaints": 1.0, "usage": 2.0}, {"score": np.float64(0.5)}),
        ({"usage": 1.0, "tenure": 2.0, "complaints": 3.0}, {}),  # another order
        ({"tenure": 1.0, "complaints": 1.0}, {}),  # fewer
        ({"tenure": 1.0, "complaints": 1.0, "usage": 1.0, "age": 4.0}, {}),  # more
        ({"tenure": 1.0, "complaints": 1.0, "usage": 1.0}, {"label": np.str_("yes"), "score": 0.1}),
        ({"tenure": 1.0, "complaints": 1.0, "usage": 1.0}, {"categorical_features": {"plan": Plan.PRO}}),
        ({"tenure": 1.0, "complaints": 1.0, "usage": 1.0}, {"subject_jurisdiction": np.str_("FR")}),
        ({"tenure": 1.0, "complaints": 1.0, "usage": 1.0}, {"latency_ms": 2}),
    ]  # fmt: skip
    plain = [
        ({"tenure": float(i), "complaints": i / 7, "usage": -1.0}, {"subject_jurisdiction": "DE"})
        for i in range(len(odd) + 3)
    ]
    return [call for pair in zip(plain, odd, strict=False) for call in pair] + plain[len(odd) :]


def test_the_common_case_is_checked_once_and_buffers_what_the_checked_way_does(
    make_buffer: Callable[..., tuple[PredictionBuffer, InProcessBroker]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reused, reused_broker = make_buffer(max_count=4)
    checked, checked_broker = make_buffer(max_count=4)
    features = dict.fromkeys(NAMES, 0.0)
    for features_of_call, options in calls():
        features.clear()
        features.update(features_of_call)  # one dict, key objects of the literals
        reused.record(features, **options)
        checked.record(fresh(features_of_call), **options)
    assert written(reused, reused_broker) == written(checked, checked_broker)

    seen: list[object] = []
    original = module._checked
    monkeypatch.setattr(module, "_checked", lambda *a, **k: seen.append(a) or original(*a, **k))
    features = fresh(dict.fromkeys(NAMES, 0.0))  # new names: checked once, then the common case
    for i in range(100):
        features["tenure"] = float(i)
        reused.record(features, score=0.5, subject_jurisdiction="DE", latency_ms=0.25)
    assert len(seen) == 1


def test_what_the_common_case_refuses_is_refused_as_before(
    make_buffer: Callable[..., tuple[PredictionBuffer, InProcessBroker]],
) -> None:
    buffer, broker = make_buffer()
    features = {"x": 1.0}
    buffer.record(features, score=0.5, subject_jurisdiction="DE")
    bad: list[tuple[Any, dict[str, Any]]] = [
        ("high", {}), (10**400, {}), (1.0, {"latency_ms": float("nan")}),
        (1.0, {"latency_ms": -1.0}), (1.0, {"subject_jurisdiction": "de"}), (1.0, {"label": 3}),
        (1.0, {"score": "high"}), (1.0, {"subject_jurisdiction": ["DE"]}),
    ]  # fmt: skip
    for value, options in bad:
        features["x"] = value
        with pytest.raises(InvalidEventError):
            buffer.record(features, **options)
    (batch,) = written(buffer, broker)
    assert batch["count"] == 1 and batch["numeric_features"][0]["values"] == (1.0,)


def test_a_key_equal_to_a_known_name_but_of_another_type_is_named_as_before(
    make_buffer: Callable[..., tuple[PredictionBuffer, InProcessBroker]],
) -> None:
    known, known_broker = make_buffer()
    alone, alone_broker = make_buffer()
    known.record({"tenure": 1.0})  # the names of the next calls' common case: this very string
    known.flush()  # in a batch of its own
    for key in (Tier.TENURE, Plan.PRO, np.str_("tenure")):  # each checked field by field
        known.record({key: 2.0})
        alone.record({key: 2.0})
    assert written(known, known_broker)[1:] == written(alone, alone_broker)


def test_record_values_is_record_of_the_zipped_features(
    make_buffer: Callable[..., tuple[PredictionBuffer, InProcessBroker]],
) -> None:
    by_values, values_broker = make_buffer(max_count=5)
    by_dict, dict_broker = make_buffer(max_count=5)
    rows: list[list[Any]] = [[1.0, 2.0, 3.0], [None, 2.0, 3.0], [1, np.float32(2), 3.0]] * 4
    for i, row in enumerate(rows):
        options = {"score": i / 10, "subject_jurisdiction": "FR" if i % 2 else None}
        by_values.record_values(NAMES, row, **options)
        by_dict.record(dict(zip(NAMES, row, strict=True)), **options)
    assert written(by_values, values_broker) == written(by_dict, dict_broker)
    for names, row in [(NAMES, [1.0, 2.0]), (NAMES, [1.0, "high", 3.0]), (("", "b"), [1.0, 2.0]),
                       ((1, 2), [1.0, 2.0])]:  # fmt: skip
        with pytest.raises(InvalidEventError):
            by_values.record_values(names, row)  # type: ignore[arg-type]


@st.composite
def buffered_rows(draw: st.DrawFn) -> list[module._Row]:
    """Rows as ``record`` buffers them: names from a small pool, often one shared tuple; often
    all of one shape (the common case ``_batches`` shortcuts)."""
    shared = ("a", "b", "c")
    uniform = draw(st.booleans())
    scored, labelled = draw(st.booleans()), draw(st.booleans())
    rows = []
    for _ in range(draw(st.integers(1, 40))):
        names = shared if uniform else draw(st.sampled_from([shared, ("a", "b"), ("c", "d", "e")]))
        categorical = None if uniform else draw(st.sampled_from([None, {"plan": "pro"}]))
        score = 0.5 if (scored if uniform else draw(st.booleans())) else None
        label = "yes" if (labelled if uniform else draw(st.booleans())) else None
        numeric = {n: draw(st.none() | st.floats(width=32)) for n in names}
        row = module._checked(numeric, categorical, score=score, label=label, subject=None,
                              latency_ms=0.0)  # fmt: skip
        rows.append((names, *row[1:]))  # the names' tuple shared as record() shares it
    return rows


def reference_batches(rows: list[module._Row], max_count: int, max_bytes: int) -> list[int]:
    """The sizes of the batches of ``_batches``' loop, as written before it had a shortcut."""
    sizes: list[int] = []
    kinds = [(row[3] is None, row[4] is None) for row in rows]
    chunk: list[module._Row] = []
    size, names = 0, set[str]()
    for i, row in enumerate(rows):
        grown = names | set(row[0]) | row[2].keys()
        padded = size + row[8] + len(grown) * (len(chunk) + 1)
        if chunk and (kinds[i] != kinds[i - 1] or len(chunk) >= max_count or padded > max_bytes):
            sizes.append(len(chunk))
            chunk, size, grown = [], 0, set(row[0]) | row[2].keys()
        chunk.append(row)
        size, names = size + row[8], grown
    return [*sizes, len(chunk)]


@settings(max_examples=300, deadline=None)
@given(rows=buffered_rows(), max_count=st.integers(1, 50), max_bytes=st.integers(1, 3000))
def test_batches_are_those_of_the_loop_and_columns_those_of_the_rows(
    rows: list[module._Row], max_count: int, max_bytes: int
) -> None:
    batches = module._batches(rows, max_count, max_bytes)
    assert [len(chunk) for _, chunk in batches] == reference_batches(rows, max_count, max_bytes)
    assert [start for start, _ in batches] == [
        sum(len(chunk) for _, chunk in batches[:i]) for i in range(len(batches))
    ]
    for _, chunk in batches:
        as_dicts = [dict(zip(row[0], _values(row[1]), strict=True)) for row in chunk]
        names = list(dict.fromkeys(name for row in as_dicts for name in row))
        expected = [{"name": n, "values": [row.get(n) for row in as_dicts]} for n in names]
        columns = module._numeric_columns(*list(zip(*chunk, strict=True))[:2])
        assert _same(columns, expected)


def _values(values: bytes | tuple[float | None, ...]) -> list[float | None]:
    if isinstance(values, bytes):
        return list(np.frombuffer(values, dtype=np.float64).tolist())
    return list(values)


def _same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_concurrent_callers_lose_nothing_and_duplicate_nothing(
    make_buffer: Callable[..., tuple[PredictionBuffer, InProcessBroker]],
) -> None:
    buffer, broker = make_buffer(max_count=64, max_delay_ms=5)
    per_thread = 1500

    def caller(n: int) -> None:
        features = {"tenure": 0.0, "usage": float(n)}
        for i in range(per_thread):
            value = float(n * per_thread + i)
            if n == 0:
                buffer.record_values(("tenure", "usage"), [value, float(n)])
            elif n == 1:
                buffer.record(fresh({"tenure": value, "usage": 1.0}), subject_jurisdiction="DE")
            else:
                features["tenure"] = value
                buffer.record(features, score=0.5 if n == 2 else None)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batches = written(buffer, broker)
    values = [v for b in batches for v in b["numeric_features"][0]["values"]]
    assert sorted(values) == [float(i) for i in range(4 * per_thread)]
    for n in range(4):  # each caller's predictions in its order
        own = [v for v in values if n * per_thread <= v < (n + 1) * per_thread]
        assert own == sorted(own)
    assert all(b["count"] <= 64 for b in batches)


# -- AuditedModel -------------------------------------------------------------------------------


def classifier(path: Path) -> Path:
    """A label (int64) and the probabilities of two classes for rows of three features."""
    weights = np.array([[0.5, -0.5], [-1.0, 1.0], [2.0, 0.1]], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["z"]),
            helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["z"], ["label"], axis=1, keepdims=0),
        ],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
        ],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def audited(
    tmp_path: Path, make_buffer: Callable[..., tuple[PredictionBuffer, InProcessBroker]]
) -> tuple[AuditedModel, InProcessBroker]:
    buffer, broker = make_buffer()
    model = AuditedModel(
        classifier(tmp_path / "classifier.onnx"), producer=buffer.producer, model="churn",
        version="3", location={"country": "DE"}, feature_names=list(NAMES),
    )  # fmt: skip
    return model, broker


OUTPUTS: list[list[Any]] = [
    [np.array([[0.25]], dtype=np.float32)],
    [np.array([[0.25, 0.75]], dtype=np.float32), np.array([1], dtype=np.int64)],
    [np.array([1], dtype=np.int64), np.array([[0.2, 0.7, 0.1]], dtype=np.float64)],
    [np.array([0.5], dtype=np.float16), np.array([b"yes"]), np.array(["no"])],
    [np.array([], dtype=np.int64), np.array(["late"]), np.array([[np.nan, 1.0, 2.0]])],
    [[{"no": 0.25, "yes": 0.75}], np.array([[0.5, 0.5]], dtype=np.float32)],  # a ZipMap
    [np.array([[1, 2]], dtype=np.int32)],
]


@pytest.mark.parametrize("outputs", OUTPUTS, ids=range(len(OUTPUTS)))
def test_predict_reads_the_first_row_as_predict_batch_reads_every_row(
    audited: tuple[AuditedModel, InProcessBroker], outputs: list[Any]
) -> None:
    model, _ = audited
    scores, labels = model._interpret(outputs)
    score, label = model._first(outputs)
    assert _same(score, scores[0] if scores else None)
    assert label == (labels[0] if labels else None)


def test_predict_records_what_predict_batch_records(
    audited: tuple[AuditedModel, InProcessBroker],
) -> None:
    model, broker = audited
    rows = np.random.default_rng(4).normal(size=(20, 3)).astype(np.float32)
    singles = [model.predict(dict(zip(NAMES, row.tolist(), strict=True))) for row in rows[:10]]
    singles += [model.predict(row if i % 2 else row.tolist()) for i, row in enumerate(rows[10:])]
    model.flush()
    batch = model.predict_batch(rows)
    assert model.producer.flush(5)
    single, whole = (CODEC.decode(m.value) for m in broker.read("auditline.predictions"))
    assert isinstance(single, PredictionBatch) and isinstance(whole, PredictionBatch)
    assert np.array_equal(np.stack(singles), batch)
    for field in ("count", "numeric_features", "scores", "labels", "subject_jurisdictions"):
        assert getattr(single, field) == getattr(whole, field), field


def test_predict_input_is_refused_as_before(audited: tuple[AuditedModel, InProcessBroker]) -> None:
    model, _ = audited
    with pytest.raises(ConfigError, match=r"missing.*usage"):
        model.predict(defaultdict(float, {"tenure": 1.0, "complaints": 0.0}))  # no default used
    with pytest.raises(ConfigError, match=r"missing.*\['complaints', 'usage'\]"):
        model.predict({"tenure": 1.0})
    with pytest.raises(ConfigError, match=r"expected 3 features, got shape \(2,\)"):
        model.predict([1.0, 2.0])
    with pytest.raises(ConfigError, match=r"got shape \(1, 3\)"):
        model.predict(np.zeros((1, 3), dtype=np.float32))
