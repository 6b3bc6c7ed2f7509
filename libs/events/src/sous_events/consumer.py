"""The idempotent consumer runner: effectively-once processing on top of at-least-once delivery.

For each record the handler runs in a transaction that also inserts `inbox(consumer, event_id)`; a
duplicate finds its inbox row and is skipped. Offsets are committed only after that transaction, so a
crash replays at most the uncommitted tail, which the inbox absorbs. A record that keeps failing goes to
`<topic>.dlq` with the error in its headers after N attempts, and the partition moves on.
Partitions are processed concurrently; records within a partition strictly in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.codec import decode
from sous_events.envelope import Envelope
from sous_events.kafka import KafkaConfig, make_consumer, make_producer
from sous_events.tables import inbox
from sous_events.topics import dlq_topic

logger = logging.getLogger("sous.consumer")

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
AfterCommit = Callable[[Envelope], Awaitable[None]]


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        # Wait for the batch in hand so its offsets are committed before another member takes over.
        async with self.runner._batch_lock:
            await self.runner._commit_pending()

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        return None


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        handler: Handler,
        sessions: async_sessionmaker[AsyncSession],
        kafka: KafkaConfig,
        event_types: Collection[str] | None = None,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.name = name
        self.topics = list(topics)
        self.handler = handler
        self.sessions = sessions
        self.kafka = kafka
        self.event_types = set(event_types) if event_types is not None else None
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.after_commit = after_commit
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self._pending: dict[TopicPartition, int] = {}
        self._batch_lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            consumer = make_consumer(self.kafka, self.name)
            producer = make_producer(self.kafka)
            try:
                consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
                await consumer.start()
                await producer.start()
                self._consumer = consumer
                self.ready.set()
                backoff = 0.2
                while not self._stopping.is_set():
                    batches = await consumer.getmany(timeout_ms=500, max_records=500)
                    if batches:
                        async with self._batch_lock:
                            await asyncio.gather(
                                *(self._process_partition(tp, records, producer) for tp, records in batches.items())
                            )
                            await self._commit_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("consumer %s: %s; restarting in %.1fs", self.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._consumer = None
                self._pending.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 10)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(producer.stop(), 5)

    async def _commit_pending(self) -> None:
        if not self._pending or self._consumer is None:
            return
        offsets, self._pending = dict(self._pending), {}
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The records will be delivered again; the inbox makes that harmless.
            logger.info("consumer %s: commit failed (%s); records will be redelivered", self.name, exc)

    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]], producer: Any
    ) -> None:
        # Fast path: the whole partition batch in one transaction. Any failure rolls it back and the
        # records are replayed one by one, so retries and the DLQ work per record.
        if len(records) > 1 and await self._apply_batch(records):
            self._pending[tp] = records[-1].offset + 1
            return
        for record in records:
            await self._process(record, producer)
            self._pending[tp] = record.offset + 1

    async def _apply_batch(self, records: list[ConsumerRecord[Any, Any]]) -> bool:
        try:
            envelopes = [decode(record.value) for record in records]
        except Exception:
            return False
        wanted = [e for e in envelopes if self.event_types is None or e.event_type in self.event_types]
        applied: list[Envelope] = []
        try:
            async with self.sessions() as session, session.begin():
                for envelope in wanted:
                    if await self._claim(session, envelope):
                        await self.handler(session, envelope)
                        applied.append(envelope)
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        self.applied += len(applied)
        self.duplicates += len(wanted) - len(applied)
        if self.after_commit is not None:
            for envelope in applied:
                with contextlib.suppress(Exception):
                    await self.after_commit(envelope)
        return True

    async def _claim(self, session: AsyncSession, envelope: Envelope) -> bool:
        inserted = await session.execute(
            pg_insert(inbox)
            .values(consumer=self.name, event_id=envelope.event_id)
            .on_conflict_do_nothing()
            .returning(inbox.c.event_id)
        )
        return inserted.first() is not None

    async def _process(self, record: ConsumerRecord[Any, Any], producer: Any) -> None:
        try:
            envelope = decode(record.value)
        except Exception as exc:
            await self._dead_letter(record, producer, exc, attempts=1)
            return
        if self.event_types is not None and envelope.event_type not in self.event_types:
            return
        last_error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                applied = await self._apply(envelope)
                if applied and self.after_commit is not None:
                    with contextlib.suppress(Exception):
                        await self.after_commit(envelope)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                last_error = exc
                logger.warning(
                    "consumer %s: %s %s attempt %d failed: %s",
                    self.name,
                    envelope.event_type,
                    envelope.event_id,
                    attempt,
                    exc,
                )
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        assert last_error is not None
        await self._dead_letter(record, producer, last_error, attempts=self.max_attempts)

    async def _apply(self, envelope: Envelope) -> bool:
        async with self.sessions() as session, session.begin():
            if not await self._claim(session, envelope):
                self.duplicates += 1
                return False
            await self.handler(session, envelope)
        self.applied += 1
        return True

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], producer: Any, error: BaseException, *, attempts: int
    ) -> None:
        headers = [
            *list(record.headers or ()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_error", str(error)[:2000].encode()),
            ("dlq_error_type", type(error).__name__.encode()),
            ("dlq_traceback", "".join(traceback.format_exception(error))[-4000:].encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await asyncio.wait_for(
            producer.send_and_wait(dlq_topic(record.topic), value=record.value, key=record.key, headers=headers),
            self.kafka.send_timeout_s,
        )
        self.dead_lettered += 1
        logger.error(
            "consumer %s: record %s/%s/%s dead-lettered after %d attempts: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            attempts,
            error,
        )
