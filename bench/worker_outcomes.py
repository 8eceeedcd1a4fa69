"""Model quality in the faust worker: CPU per outcome joined, against a raw loop doing the same
work in the same run.

events = a completed training run (accuracy 0.9), 50 ``PredictionBatch`` events of 1,000 scored
         and labelled predictions over ten minutes of event time, their 50,000 ``Outcome``
         events (a label each, up to two minutes after the prediction, shuffled; a tenth sent
         before their batch), then one batch an hour later that lets every window be judged
         (windows of a minute, a horizon of ten minutes and 15 minutes of allowed lateness, as the
         outcomes are shuffled over the whole span; ``join_from: training_run``)
raw    = a plain loop: confluent-kafka consume, decode, chain check, then
         ``PerformanceDetector.observe`` (the join, the windows, the judgement): the work
         without faust, the internal topic and the keyed state's changelog
worker = `auditline worker` (a separate process), ready before the events are produced, until
         its group has committed the outcomes and predictions and then every message its agents
         sent to the model-quality stage (one per source batch and model version)

Figures: CPU microseconds per outcome of each (``raw_cpu_us_per_outcome``,
``worker_cpu_us_per_outcome``: the worker's whole CPU, its prediction and outcome agents
included), ``worker_outcomes_per_core_s`` and ``ratio`` = raw / worker CPU. Starts a local Kafka
the way the tests do (or uses AUDITLINE_TEST_KAFKA); ``BENCH_PROFILE=FILE`` runs the worker under
py-spy (``BENCH_PYSPY``: its path), collapsed stacks written to FILE when it stops. Ends with one
JSON line.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from _process import cpu_seconds
from _report import report
from confluent_kafka import Consumer, TopicPartition

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import Outcome, PredictionBatch, RunStatus, TrainingRun
from auditline.integrity.chain import canonical_from_body
from auditline.integrity.verify import ChainVerifier
from auditline.performance.config import PerformanceConfig
from auditline.performance.degradation import Baseline
from auditline.performance.detector import PerformanceDetector
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import AuditlineSettings
from auditline.testing.kafka_broker import LocalKafka
from streams import caught_up, consumed, publish
from streams import worker as start_worker

BATCHES, ROWS = 50, 1_000
SETTINGS = """\
defaults:
  join_from: training_run
  window_seconds: 60
  allowed_lateness_seconds: 900
  horizon_seconds: 600
  min_outcomes: 100
"""
CONFIG = PerformanceConfig.model_validate(yaml.safe_load(SETTINGS)["defaults"])
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def sealed(tmp: Path) -> list[tuple[str, bytes, bytes]]:
    """The events, sealed by the SDK in-process (a scoring and a labelling producer)."""
    rng = random.Random(11)
    broker = InProcessBroker()

    def producer(service: str) -> AuditProducer:
        settings = AuditlineSettings(
            producer={"service": service, "instance": uuid.uuid4().hex[:8]},
            spool={"path": str(tmp / uuid.uuid4().hex), "fsync": "never"},
        )
        return AuditProducer(settings, transport=InProcessTransport(broker, 10**7))

    with producer("scoring") as scoring, producer("labelling") as labelling:
        with scoring.training_run(model="churn", inputs=["ds"], location={"country": "DE"},
                                  code_version="c1", purpose="analytics") as run:  # fmt: skip
            run.log_metrics(accuracy=0.9)
            run.set_output("1")
        waiting: list[tuple[datetime, dict[str, Any]]] = []
        for b in range(BATCHES):
            when = T0 + timedelta(seconds=b * 12)
            scores = [rng.random() for _ in range(ROWS)]
            said = ["1" if s >= 0.5 else "0" for s in scores]
            truth = [p if rng.random() < 0.9 else ("0" if p == "1" else "1") for p in said]
            outcomes = [
                (when + timedelta(seconds=rng.uniform(0, 120)),
                 {"model_name": "churn", "model_version": "1", "batch_id": f"b{b}", "row": r,
                  "label": truth[r]})
                for r in range(ROWS)
            ]  # fmt: skip
            early = [o for o in outcomes if rng.random() < 0.1]
            for known, body in early:
                labelling.emit(Outcome, event_time=known, **body)
            scoring.emit(PredictionBatch, event_time=when, batch_id=f"b{b}", model_name="churn",
                         model_version="1", location={"country": "DE"}, count=ROWS,
                         scores=scores, labels=said, latency_ms=1.0)  # fmt: skip
            waiting += [o for o in outcomes if o not in early]
        rng.shuffle(waiting)
        for known, body in waiting:
            labelling.emit(Outcome, event_time=known, **body)
        scoring.emit(PredictionBatch, event_time=T0 + timedelta(hours=1), batch_id="last",
                     model_name="churn", model_version="1", location={"country": "DE"},
                     count=1, scores=[0.9], labels=["1"], latency_ms=1.0)  # fmt: skip
        assert scoring.flush(60) and labelling.flush(60)
    return [(topic, m.key, m.value) for topic, log in broker.topics.items() for m in log]


def raw(bootstrap: str, prefix: str, messages: list[Any], last: bytes) -> tuple[float, int]:
    """CPU seconds of decode + chain check + the detector over the topics, then the last batch,
    and the pairs joined."""
    codec, verifier, cpu = SingleObjectCodec(Catalogue(prefix)), ChainVerifier({}), 0.0
    detector: PerformanceDetector | None = None
    for topic in ("training", "predictions", "outcomes", "last"):
        if topic == "last":
            batches: Any = [[SimpleNamespace(value=lambda: last)]]
        else:
            expected = sum(1 for m in messages if m[0] == f"auditline.{topic}")
            batches = consumed(bootstrap, f"{prefix}.{topic}", expected)
        for batch in batches:
            began = time.process_time()
            for message in batch:
                event, body = codec.decode_with_body(message.value())
                verifier.observe(
                    event,
                    None if body is None
                    else canonical_from_body(body, event.envelope.schema_version),
                )  # fmt: skip
                if isinstance(event, TrainingRun) and event.status == RunStatus.COMPLETED:
                    detector = PerformanceDetector(Baseline.from_training_run(event), CONFIG)
                elif isinstance(event, PredictionBatch | Outcome) and detector is not None:
                    detector.observe(event)
            cpu += time.process_time() - began
    assert detector is not None
    return cpu, detector.counts()["joined"]


def worker(bootstrap: str, prefix: str, tmp: Path) -> subprocess.Popen[bytes]:
    """A ready ``auditline worker`` (bench/streams.py's) with the bench's model-quality
    settings, under py-spy with ``BENCH_PROFILE``."""
    (tmp / "performance.yaml").write_text(SETTINGS)
    profile = os.environ.get("BENCH_PROFILE")  # a file: the worker sampled by py-spy into it
    spy = os.environ.get("BENCH_PYSPY", "py-spy")  # (the CPU figures are then py-spy's)
    wrap = [spy, "record", "--format", "raw", "--rate", "200", "-o", profile, "--"]
    return start_worker(
        bootstrap, prefix, tmp, ready=True, wrap=wrap if profile else None,
        env={"AUDITLINE_PERFORMANCE_PATH": str(tmp / "performance.yaml")},
    )  # fmt: skip


def judged(bootstrap: str, prefix: str, outcomes: int, batches: int) -> None:
    """Wait until the worker's group has committed the outcomes and predictions topics up to
    these counts, then everything their agents sent to the model-quality stage."""
    group = f"{prefix}-streams"
    caught_up(bootstrap, group, f"{prefix}.outcomes", outcomes)
    caught_up(bootstrap, group, f"{prefix}.predictions", batches)
    inputs = f"{prefix}-streams-performance-inputs"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    partitions = consumer.list_topics(inputs).topics[inputs].partitions
    ends = [consumer.get_watermark_offsets(TopicPartition(inputs, p))[1] for p in partitions]
    consumer.close()
    caught_up(bootstrap, group, inputs, sum(ends))


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the worker (under py-spy: its child, so that py-spy writes its profile)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    pids = children.read_text().split() if os.environ.get("BENCH_PROFILE") else []
    for pid in pids:
        os.kill(int(pid), signal.SIGTERM)
    if not pids:
        process.terminate()
    process.wait(60)


def main() -> None:
    figures: dict[str, float] = {}
    with ExitStack() as stack:
        external = os.environ.get("AUDITLINE_TEST_KAFKA")
        kafka = None if external else stack.enter_context(LocalKafka())
        bootstrap = external or kafka.bootstrap  # type: ignore[union-attr]
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        run = f"bench{int(time.time())}"
        messages = sealed(tmp)
        # the batch an hour later goes last, once every outcome was read (the watermark is the
        # latest event time of either kind: read earlier, it would judge every window early)
        last = max(i for i, m in enumerate(messages) if m[0] == "auditline.predictions")
        final = messages.pop(last)
        outcomes = sum(1 for m in messages if m[0] == "auditline.outcomes")
        batches = sum(1 for m in messages if m[0] == "auditline.predictions")
        publish(bootstrap, f"{run}r", messages)
        raw_cpu, joined = raw(bootstrap, f"{run}r", messages, final[2])
        assert joined == outcomes, f"raw joined {joined} of {outcomes} outcomes"
        process = worker(bootstrap, f"{run}w", tmp)
        cpu = cpu_seconds(process.pid)
        started = time.perf_counter()
        publish(bootstrap, f"{run}w", messages)
        judged(bootstrap, f"{run}w", outcomes, batches)
        publish(bootstrap, f"{run}w", [final])
        judged(bootstrap, f"{run}w", outcomes, batches + 1)
        elapsed = time.perf_counter() - started
        worker_cpu = cpu_seconds(process.pid) - cpu
        stop(process)
    figures["outcomes"] = outcomes
    figures["raw_cpu_us_per_outcome"] = raw_cpu / outcomes * 1e6
    figures["worker_cpu_us_per_outcome"] = worker_cpu / outcomes * 1e6
    figures["worker_outcomes_per_core_s"] = outcomes / worker_cpu
    figures["worker_outcomes_per_s"] = outcomes / elapsed
    figures["ratio"] = raw_cpu / worker_cpu
    report("worker_outcomes", figures, batches=BATCHES, rows=ROWS)


if __name__ == "__main__":
    main()
