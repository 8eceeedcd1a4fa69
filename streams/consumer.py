"""The worker's Kafka consumer: faust's aiokafka consumer, with one fix for restarts.

faust rewinds its input partitions to the committed offsets after every rebalance and whenever it
drops records fetched while its flow is paused (during table recovery). aiokafka's
``seek_to_committed`` does not move a partition whose group has no committed offset (or offset 0),
so records fetched during recovery were dropped and never read again: a worker killed before its
first commit and restarted skipped everything it had not committed (faust-streaming#216 describes
the same loss). Here such partitions are rewound to where an uncommitted group starts (the
earliest offset, ``auto.offset.reset=earliest``); changelog partitions are left to faust's
recovery. Delivery stays at least once; alert ids are deterministic, so replays dedup downstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as driver


class _RewindingThread(driver.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[Any, int]:
        committed: Mapping[Any, int] = await self.call_thread(self._seek_to_committed_or_start)
        return committed

    async def _seek_to_committed_or_start(self) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        committed: Mapping[Any, int | None] = await consumer.seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        for tp, offset in committed.items():
            if tp.topic in changelogs or (offset is not None and offset > 0):
                continue
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, 0)
        return committed  # type: ignore[return-value]


class RewindingConsumer(driver.Consumer):
    """faust's aiokafka consumer whose seek-to-committed also rewinds uncommitted partitions."""

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _RewindingThread(self, loop=self.loop, beacon=self.beacon)


def install(app: Any) -> None:
    """Make ``app`` create its consumer as a ``RewindingConsumer`` (before the worker starts)."""
    app.transport.Consumer = RewindingConsumer
