"""How far the Kafka demo has got, read from the broker: topics' ends and a group's lag.

One confluent-kafka consumer that never joins its group: it only asks for watermarks and for the
offsets the group (the worker's) has committed, so watching changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from auditline.errors import UnavailableError
from auditline.topics import with_logger

TIMEOUT_S = 10.0


class Offsets:
    def __init__(self, conf: dict[str, str], group: str) -> None:
        self.consumer = Consumer(
            {**with_logger(conf), "group.id": group, "enable.auto.commit": False}
        )
        self.bootstrap = conf.get("bootstrap.servers", "")

    def _partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        metadata = self.consumer.list_topics(timeout=TIMEOUT_S).topics
        return [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in metadata
            for partition in metadata[topic].partitions
        ]

    def ends(self, topics: Iterable[str]) -> int:
        """Records written to ``topics`` so far (the sum of their partitions' high watermarks)."""
        try:
            return sum(
                self.consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S)[1]
                for tp in self._partitions(topics)
            )
        except KafkaException as exc:
            raise self._unavailable(exc) from exc

    def lag(self, topics: Iterable[str]) -> int:
        """Records of ``topics`` after the group's committed offsets (all of them before its
        first commit)."""
        try:
            committed = self.consumer.committed(self._partitions(topics), timeout=TIMEOUT_S)
            return sum(
                self.consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S)[1] - max(tp.offset, 0)
                for tp in committed
            )
        except KafkaException as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: KafkaException) -> UnavailableError:
        reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        return UnavailableError(f"the broker at {self.bootstrap} stopped answering: {reason}")

    def close(self) -> None:
        self.consumer.close()
