"""The worker's Kafka consumer: faust's aiokafka consumer, with fixes for where a group starts.

faust rewinds its input partitions to the committed offsets after every rebalance and whenever it
drops records fetched while its flow is paused (during table recovery). aiokafka's
``seek_to_committed`` does not move a partition whose group has no committed offset (or offset 0),
so records fetched during recovery were dropped and never read again: a worker killed before its
first commit and restarted skipped everything it had not committed (faust-streaming#216 describes
the same loss). Two measures:

- ``commit_start_offsets``: before the worker starts, every input partition without a committed
  offset gets one at its earliest offset (where ``auto.offset.reset=earliest`` would start), so
  the consumer starts from committed offsets and never from a reset;
- ``RewindingConsumer``: a seek to committed offsets also moves partitions whose committed offset
  is 0 or missing (a partition added later), to the earliest offset, with synchronous seeks done
  together after one offsets lookup. Changelog partitions are left to faust's recovery.

Its fetch loop (``_drain_messages``) differs from faust's in two ways:

- **No record is counted as read without reaching its agent.** At the end of a rebalance faust
  resumes the input partitions, seeks them to their committed offsets and then resumes the flow,
  which clears the agents' queues. Records fetched in between went into a queue and were cleared,
  the rest of a batch fetched before the seek was still delivered, moving the read offset past
  them, and the re-read after the seek skipped them as already delivered: a restarted worker
  lost a few records now and then (2 of 10,000 dead letters, 3 prediction batches of a drift
  window). Here an input record is held back while a rebalance, a recovery or a flow suspension
  is under way, or when a seek happened after its batch was fetched; once settled, the input
  partitions go back to their committed offsets (a held record was never acknowledged, so the
  committed offset is at or before it) and it is read again. Changelog records flow as in faust.
- faust races the delivery of each record against a flow suspension (two asyncio tasks per
  record, the largest single cost of a worker here). Here, once settled, a record is delivered
  directly; the race is kept for changelog records during a recovery. Measured on the worker:
  about 1.3-1.5 times the events/s.

Delivery stays at least once; alert ids are deterministic, so replays dedup downstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.errors import KafkaError
from confluent_kafka import Consumer, KafkaException, TopicPartition
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as driver

FETCH_MIN_BYTES = 16 * 1024  # a fetch returns once this much is there (about 50 events) ...
FETCH_MAX_WAIT_MS = 50  # ... or after this long


class _RewindingThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        """faust's consumer, fetching in fewer, larger responses.

        faust leaves aiokafka's ``fetch_min_bytes=1``: the broker answers each fetch as soon as
        one record is there, so at a steady 1,000 events/s the worker made hundreds of fetch
        round trips a second (encoded and decoded in Python) and used 0.75 of a core. With 16
        KiB or 50 ms per fetch it uses 0.4, for about 20 ms more latency (bench/streams.py).
        aiokafka takes both from the consumer's constructor arguments when it starts; faust
        does not expose them, so they are set on the consumer it built, before it starts.
        """
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def seek_to_committed(self) -> Mapping[Any, int]:
        committed: Mapping[Any, int] = await self.call_thread(self._seek_to_committed_or_start)
        return committed

    async def _seek_to_committed_or_start(self) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        committed: Mapping[Any, int | None] = await consumer.seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        rewind = [
            tp
            for tp, offset in committed.items()
            if tp.topic not in changelogs and (offset is None or offset <= 0)
        ]
        if rewind:
            starts = await consumer.beginning_offsets(rewind)
            for tp in rewind:  # no await between the seeks: no record slips in between
                consumer.seek(tp, starts[tp])
        return committed  # type: ignore[return-value]


class RewindingConsumer(driver.Consumer):
    """faust's aiokafka consumer whose seek-to-committed also rewinds uncommitted partitions, and
    whose fetch loop never lets a record be counted as read without reaching its agent."""

    _seeks = 0  # seeks to committed offsets so far (faust's and ours)
    _rewind = False  # input records were held back: seek to committed offsets once settled

    async def perform_seek(self) -> None:
        self._seeks += 1
        await super().perform_seek()

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - worker tests
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                if self._rewind and self._settled():
                    await self._reread_held_back()
                self.diag.set_flag(CONSUMER_FETCHING)
                await self._deliver(self.getmany(timeout=1.0), self._seeks)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _reread_held_back(self) -> None:
        self.log.info("Records held back while partitions moved: re-reading them")
        try:
            await self.perform_seek()
            self._rewind = False
        except (KafkaError, OSError, TimeoutError) as exc:  # e.g. the coordinator moved: retry
            self.log.warning("Seek to committed offsets failed, will retry: %r", exc)
            await asyncio.sleep(1.0)

    def _settled(self) -> bool:
        """No rebalance or table recovery under way, and the flow is not suspended."""
        app = self.app
        return not (app.rebalancing or app.in_recovery or self.suspend_flow.is_set())

    async def _deliver(self, records: Any, seeks: int) -> None:
        await asyncio.sleep(0)  # getmany may return at once: let the loop breathe
        changelogs = self.app.tables.changelog_topics
        since_yield = 0
        async for tp, message in records:
            since_yield += 1
            if since_yield > 100:
                await asyncio.sleep(0)
                since_yield = 0
            settled = self._settled()
            if tp.topic not in changelogs and (self._rewind or seeks != self._seeks or not settled):
                # fetched before a seek, or partitions are moving: faust clears the agents'
                # queues when the flow resumes, so a record delivered now could be dropped
                # while counted as read. Hold it back; once settled, every input partition
                # goes back to its committed offset and it is read again.
                self._rewind = True
                continue
            offset, last = message.offset, self._read_offset.get(tp)
            if last is not None and offset < last:
                continue  # already delivered (faust drops these too)
            if (last and offset - last > 1) or self._commit_due():
                await self._gap_and_commit(tp, message, last)
            if settled:
                await self.callback(message)
            else:  # changelog records during a recovery: faust's race against a suspension
                await self.wait_first(self.callback(message), self.suspend_flow.wait())
            self._read_offset[tp] = offset

    def _commit_due(self) -> bool:
        return self._commit_every is not None and self._n_acked >= self._commit_every

    async def _gap_and_commit(self, tp: Any, message: Any, last: int | None) -> None:
        """faust's bookkeeping before a delivery: record a gap, commit every N acks."""
        offset = message.offset
        if last and offset - last > 1 and self.app.topics.acks_enabled_for(message.topic):
            await self._add_gap(tp, last + 1, offset)
        if self._commit_due():
            self._n_acked = 0
            await self.commit()

    def last_fetch_ms(self, tp: Any) -> int | None:
        """When a fetch last brought ``tp``'s high watermark (ms since the epoch; aiokafka's
        ``last_poll_timestamp``), None before the first: how fresh "read to the end" is."""
        try:
            consumer = self._thread._ensure_consumer()
            at: int | None = consumer.last_poll_timestamp(tp)
        except (AssertionError, AttributeError, KafkaError):  # not assigned (any more), stopping
            return None
        return at

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _RewindingThread(self, loop=self.loop, beacon=self.beacon)


def install(app: Any) -> None:
    """Make ``app`` create its consumer as a ``RewindingConsumer`` (before the worker starts)."""
    app.transport.Consumer = RewindingConsumer


def commit_start_offsets(conf: dict[str, Any], group: str, topics: Iterable[str]) -> int:
    """Commit the earliest offset for ``group`` on every partition of ``topics`` that has no
    committed offset yet; returns how many. Skipped (0) when the group has live members, whose
    offsets are theirs to commit."""
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            if topic in metadata.topics
            for p in metadata.topics[topic].partitions
        ]
        missing = [tp for tp in consumer.committed(partitions, timeout=10) if tp.offset < 0]
        for tp in missing:
            tp.offset = consumer.get_watermark_offsets(tp, timeout=10)[0]
        if missing:
            consumer.commit(offsets=missing, asynchronous=False)
        return len(missing)
    except KafkaException:
        return 0  # e.g. the group is active: its members own its offsets
    finally:
        consumer.close()
