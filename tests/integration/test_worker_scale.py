"""Two workers sharing the partitions on the real broker: lineage declared on one worker's
partition is inherited by events on the other's, and when one worker is killed the other takes
its partitions over with the lineage state (no decision lost; repeats keep their ids)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import AssetDeclared, DataMovement, Event, TrainingRun
from tests.integration.test_worker import PARTY, read_until, violations, worker
from tests.integration.test_worker_order import PINNED
from tests.integration.test_worker_streams import sealed
from tests.kafka_helpers import create_topics, free_port, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.worker]
COPY = {"asset_id": "ds", "operation": "copy", "source": {"country": "DE"},
        "destination": {"country": "US"}, "records": 5, "bytes": 5, "purpose": "analytics",
        "exporter": {**PARTY, "country": "DE"}, "importer": PARTY}  # fmt: skip


class Streams:
    """Producer streams sealed by the SDK, each published to the partition it is given."""

    def __init__(self, bootstrap: str, prefix: str, tmp: Path) -> None:
        self.prefix, self.tmp = prefix, tmp
        self.raw = Producer({"bootstrap.servers": bootstrap})

    def emit(self, instance: str, partition: int, model: type[Event], **body: Any) -> str:
        (receipt,), records = sealed(self.tmp, instance, model, [body])
        for topic, key, value in records:
            self.raw.produce(
                topic.replace("auditline.", f"{self.prefix}.", 1), value, key, partition
            )
        assert self.raw.flush(10) == 0
        return str(receipt.event_id)


def members(bootstrap: str, group: str) -> int:
    """How many members the group has once it is stable with partitions for each (else 0)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        found = admin.describe_consumer_groups([group])[group].result(10)
    except KafkaException:
        return 0
    settled = found.state == ConsumerGroupState.STABLE
    return (
        len(found.members)
        if settled and all(m.assignment.topic_partitions for m in found.members)
        else 0
    )


def lineage_recorded(bootstrap: str, prefix: str, key: bytes) -> bool:
    changelog = f"{prefix}-streams-policy-state-changelog"
    return any(m.key == key for m in read_topic(bootstrap, changelog, 1, timeout=5))


def pairs(found: list[Any]) -> set[tuple[str, str]]:
    return {(v.rule_id, v.subject_event_id) for v in found}


def test_two_workers_share_lineage_and_one_takes_over_from_the_other(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    prefix = f"t{unique}.auditline"
    catalogue = Catalogue(prefix)
    create_topics(kafka_bootstrap, [*catalogue.topics, catalogue.dead_letter_topic], partitions=2)
    streams = Streams(kafka_bootstrap, prefix, tmp_path)
    processes = [worker(kafka_bootstrap, prefix, tmp_path, AUDITLINE_PRODUCER__INSTANCE=name,
                        AUDITLINE_SPOOL__PATH=str(tmp_path / f"spool-{name}"))
                 for name in ("w1", "w2")]  # fmt: skip
    group = f"{prefix}-streams"
    try:
        assert read_until(lambda: [members(kafka_bootstrap, group)], lambda n: n == [2], 120) == [2]
        # declared on partition 0, copied and trained on from partition 1: the other worker
        streams.emit("owner", 0, AssetDeclared, **PINNED)
        assert read_until(lambda: [lineage_recorded(kafka_bootstrap, prefix, b'"asset:ds"')],
                          lambda seen: seen == [True], 60) == [True]  # fmt: skip
        time.sleep(1)
        copied = streams.emit("etl", 1, DataMovement, **{**COPY, "target_asset_id": "ds-us"})
        trained = streams.emit("ml", 1, TrainingRun, run_id="r1", status="started",
                               model_name="m", inputs=["ds-us"], code_version="c",
                               location={"country": "US"}, purpose="analytics")  # fmt: skip
        expected = {("RES-PIN", copied), ("EU-US", copied), ("RES-PIN", trained)}
        found = read_until(lambda: violations(kafka_bootstrap, prefix, 3),
                           lambda got: pairs(got) >= expected, 90)  # fmt: skip
        assert pairs(found) == expected, "lineage declared on the other worker was not inherited"

        processes[1].send_signal(signal.SIGKILL)  # one worker dies: the other takes over
        processes[1].wait(30)
        later = [streams.emit("etl", p, DataMovement, **{**COPY, "target_asset_id": f"ds-{p}"})
                 for p in (0, 1)]  # fmt: skip
        expected |= {(rule, event) for event in later for rule in ("RES-PIN", "EU-US")}
        found = read_until(lambda: violations(kafka_bootstrap, prefix, 7),
                           lambda got: pairs(got) >= expected, 120)  # fmt: skip
        assert processes[0].poll() is None
    finally:
        for process in processes:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
    ids = {v.envelope.event_id for v in found}
    say(f"two workers, one killed: {len(found)} alerts, {len(ids)} distinct ids")
    assert pairs(found) == expected
    assert len({(v.rule_id, v.subject_event_id, v.violation_id) for v in found}) == len(expected)


def held_partitions(port: int, topic: str) -> set[int]:
    """The partitions of ``topic`` a worker holds, from its /metrics (read per partition)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    prefix = "auditline_worker_unread{"
    return {
        int(line.split('partition="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith(prefix) and f'topic="{topic}"' in line
    }


def test_a_caught_up_worker_waits_for_lineage_another_worker_has_not_read_yet(
    kafka_bootstrap: str, tmp_path: Path, unique: str, say: Callable[[str], None]
) -> None:
    """The shared read progress: one worker is stopped (SIGSTOP) before it reads a declaration
    on its partition; the other, caught up on its own, holds the movement that needs it instead
    of judging it without lineage, and judges it with the lineage once the first has read it."""
    prefix = f"t{unique}.auditline"
    catalogue = Catalogue(prefix)
    create_topics(kafka_bootstrap, [*catalogue.topics, catalogue.dead_letter_topic], partitions=2)
    streams = Streams(kafka_bootstrap, prefix, tmp_path)
    ports = {name: free_port() for name in ("w1", "w2")}
    processes = {name: worker(kafka_bootstrap, prefix, tmp_path, AUDITLINE_PRODUCER__INSTANCE=name,
                              AUDITLINE_SPOOL__PATH=str(tmp_path / f"spool-{name}"),
                              AUDITLINE_METRICS__PORT=str(port))
                 for name, port in ports.items()}  # fmt: skip
    assets = catalogue.for_model(AssetDeclared).topic
    try:
        group = f"{prefix}-streams"
        assert read_until(lambda: [members(kafka_bootstrap, group)], lambda n: n == [2], 120) == [2]
        for p in (0, 1):  # something on each partition, so that each worker reports it
            streams.emit("warm", p, AssetDeclared, **{**PINNED, "asset_id": f"warm-{p}"})

        def holders() -> list[dict[str, set[int]]]:
            try:
                return [{name: held_partitions(port, assets) for name, port in ports.items()}]
            except OSError:
                return [{}]

        held = read_until(holders, lambda h: sorted(map(sorted, h[0].values())) == [[0], [1]], 60)
        owner = next(name for name, parts in held[0].items() if parts == {0})
        other = next(name for name in ports if name != owner)
        time.sleep(2)  # both have published their progress past the warm-up
        processes[owner].send_signal(signal.SIGSTOP)  # it will not read its partition for now
        try:
            streams.emit("owner", 0, AssetDeclared, **PINNED)  # on the stopped worker's partition
            copied = streams.emit("etl", 1, DataMovement, **{**COPY, "target_asset_id": "ds-us"})
            time.sleep(3)  # the other worker has read the movement and must not judge it yet
            codec = SingleObjectCodec(catalogue)  # what is there now (stopped < session timeout)
            early = [codec.decode(m.value) for m in read_topic(
                kafka_bootstrap, f"{prefix}.alerts.violations", 0, timeout=3)]  # fmt: skip
            assert not [v for v in early if getattr(v, "subject_event_id", "") == copied], (
                f"{other} judged the movement without the lineage {owner} had not read"
            )
        finally:
            processes[owner].send_signal(signal.SIGCONT)
        expected = {("RES-PIN", copied), ("EU-US", copied)}
        found = read_until(lambda: violations(kafka_bootstrap, prefix, 2),
                           lambda got: pairs(got) >= expected, 90)  # fmt: skip
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGKILL)
            process.wait(30)
    say(f"held by {other} while {owner} was stopped, then judged with the lineage: {pairs(found)}")
    assert pairs(found) == expected
