"""The idempotent consumer runner: effectively-once processing on top of at-least-once delivery.

For each record the handler runs in a transaction that also inserts `inbox(consumer, event_id)`; a
duplicate finds its inbox row and is skipped. Offsets are committed only after that transaction, so a
crash replays at most the uncommitted tail, which the inbox absorbs.

A partition's fetched records are applied together: one transaction claims all their inbox rows in one
statement and runs the handler (or a batch handler) for the records claimed. If it fails, nothing of it
is applied and the batch is split in halves, in order, down to the record that fails (treated as below).

Failures are sorted by class (sous_events.failures):
- transient (the database or the broker is away, a deadlock, a lock or statement timeout): the record is
  retried without limit, with backoff capped at `max_backoff_s`; its partition stalls (paused, nothing
  committed past it) and the stall is surfaced (`stalled`, `transient_failures`, `on_stall`, a warning log).
  It is never dead-lettered: the infrastructure coming back is what ends the stall.
- permanent (undecodable, invalid, or a handler that keeps failing): after `max_attempts` the record goes to
  `<topic>.dlq` with the reason, the attempt count and its original topic/partition/offset; the partition
  moves on.
Offsets are committed at most every `commit_interval_s` (and whenever partitions are revoked or the consumer
stops): a commit is a broker round trip per group, and a crash re-delivers at most that interval's records,
which the inbox skips. Each partition is worked on by one task at a time (records fetched meanwhile queue behind it; only a long
backlog pauses the partition), so records within a partition are applied strictly in order while other
partitions, and polling, carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.codec import decode_wanted
from sous_events.dlq import dead_letter_headers, send_dead_letter
from sous_events.envelope import Envelope
from sous_events.failures import is_transient
from sous_events.inbox_claim import claim
from sous_events.kafka import MAX_POLL_RECORDS, KafkaConfig, make_consumer, make_producer
from sous_events.stalls import Stall, note_resumed, note_stall

logger = logging.getLogger("sous.consumer")

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
# Applies several envelopes (in partition order, already claimed in the inbox) in the caller's transaction.
BatchHandler = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]
AfterCommit = Callable[[Envelope], Awaitable[None]]
# (consumer name, partition, consecutive transient failures, the error): a metric or alert hook.
StallHook = Callable[[str, TopicPartition, int, BaseException], None]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        # Finish (or stop) the work in hand, then commit it, before another member takes the partitions.
        await self.runner._settle_workers(set(revoked))
        await self.runner._commit_pending()

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        # The group answered: this member has its share (possibly none) and reads from here on.
        self.runner.joined.set()


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        sessions: async_sessionmaker[AsyncSession],
        kafka: KafkaConfig,
        event_types: Collection[str] | None = None,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        after_commit: AfterCommit | None = None,
        on_stall: StallHook | None = None,
        revoke_grace_s: float = 5.0,
        max_backlog: int = 5000,
        commit_interval_s: float = 0.5,
        passes_over: Callable[[bytes | None], bool] | None = None,
    ) -> None:
        self.name = name
        self.topics = list(topics)
        if handler is not None and batch_handler is not None:
            raise ValueError("give a handler or a batch_handler, not both")
        self.handler = handler
        self.batch_handler = batch_handler
        self.sessions = sessions
        self.kafka = kafka
        self.event_types = set(event_types) if event_types is not None else None
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.after_commit = after_commit
        self.on_stall = on_stall
        self.revoke_grace_s = revoke_grace_s
        self.max_backlog = max_backlog
        self.commit_interval_s = commit_interval_s
        # A record's key -> whether this consumer knows it has nothing to do for that record (e.g. a run its
        # own process claimed already): such a record is consumed without being decoded or claimed in the inbox.
        self.passes_over = passes_over
        self._committed_at = 0.0
        self.applied = 0
        self.duplicates = 0
        self.passed_over = 0  # records `passes_over` spared decoding and the inbox
        self.dead_lettered = 0
        self.dead_lettered_by_topic: dict[str, int] = {}  # source topic -> records sent to its DLQ
        self.transient_failures = 0
        self.stalled: dict[TopicPartition, Stall] = {}
        self._pending: dict[TopicPartition, int] = {}
        self._workers: dict[TopicPartition, asyncio.Task[None]] = {}
        # Records fetched while their partition's worker was busy; the worker takes them up next, in order.
        self._backlog: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        # Set once the current consumer has joined its group (first assignment); a restarted consumer joins anew.
        self.joined = asyncio.Event()

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
            self.joined.clear()
            try:
                consumer.subscribe(self.topics, listener=_Rebalance(self))
                await consumer.start()
                await producer.start()
                self._consumer = consumer
                self.ready.set()
                backoff = 0.2
                while not self._stopping.is_set():
                    # While partitions are being worked on, poll briefly so a finished one resumes at once.
                    batches = await consumer.getmany(
                        timeout_ms=20 if self._workers else 500, max_records=MAX_POLL_RECORDS
                    )
                    self._reap(consumer)
                    for tp, records in batches.items():
                        self._dispatch(consumer, tp, records, producer)
                    if time.monotonic() - self._committed_at >= self.commit_interval_s:
                        await self._commit_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("consumer %s: %s; restarting in %.1fs", self.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                # No work of this consumer may outlive it: a new consumer re-reads from the committed offsets,
                # and a leftover task still applying the same partition would interleave with it.
                await self._settle_workers(None, grace_s=0.0)
                # What was applied is committed before leaving, so a restart re-reads as little as it can.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._commit_pending(), 2)
                self._consumer = None
                self._pending.clear()
                self._backlog.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 10)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(producer.stop(), 5)

    def _dispatch(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]], producer: Any
    ) -> None:
        if tp in self._workers:
            # The partition is not paused while it is worked on: a paused partition would wait for the
            # fetch in flight (up to fetch_max_wait) once resumed. Only a long backlog pauses it.
            backlog = self._backlog.setdefault(tp, [])
            backlog.extend(records)
            if len(backlog) >= self.max_backlog:
                consumer.pause(tp)
            return
        self._workers[tp] = asyncio.create_task(
            self._work(tp, records, producer), name=f"consumer-{self.name}-{tp.topic}-{tp.partition}"
        )

    async def _work(self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]], producer: Any) -> None:
        while records:
            await self._process_partition(tp, records, producer)
            records = self._backlog.pop(tp, [])

    def _reap(self, consumer: AIOKafkaConsumer) -> None:
        for tp, task in list(self._workers.items()):
            if not task.done():
                continue
            del self._workers[tp]
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            if tp in consumer.assignment():
                consumer.resume(tp)

    async def _settle_workers(self, partitions: set[TopicPartition] | None, grace_s: float | None = None) -> None:
        """Let the given partitions' work finish for a grace period, then cancel what still runs and wait."""
        chosen = {tp: t for tp, t in self._workers.items() if partitions is None or tp in partitions}
        if not chosen:
            return
        grace = self.revoke_grace_s if grace_s is None else grace_s
        if grace > 0:
            await asyncio.wait(chosen.values(), timeout=grace)
        for task in chosen.values():
            task.cancel()
        await asyncio.gather(*chosen.values(), return_exceptions=True)
        for tp in chosen:
            self._workers.pop(tp, None)
            self._backlog.pop(tp, None)
            self.stalled.pop(tp, None)

    async def _commit_pending(self) -> None:
        if not self._pending or self._consumer is None:
            return
        self._committed_at = time.monotonic()
        assigned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in self._pending.items() if tp in assigned}
        self._pending = {}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The records will be delivered again; the inbox makes that harmless.
            logger.info("consumer %s: commit failed (%s); records will be redelivered", self.name, exc)

    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]], producer: Any
    ) -> None:
        # Fast path: the whole partition batch in one transaction. A failure rolls it back and the batch is
        # split in halves, in order, so retries and the DLQ work on the one record that fails.
        if len(records) == 1:
            await self._process(tp, records[0], producer)
        elif not await self._apply_batch(records):
            middle = len(records) // 2
            await self._process_partition(tp, records[:middle], producer)
            await self._process_partition(tp, records[middle:], producer)
            return
        self._pending[tp] = records[-1].offset + 1

    async def _apply_batch(self, records: list[ConsumerRecord[Any, Any]]) -> bool:
        try:
            envelopes = [self._decode(record) for record in records]
        except Exception:
            return False
        wanted = [e for e in envelopes if e is not None]
        applied: list[Envelope] = []
        try:
            if wanted:
                async with self.sessions() as session, session.begin():
                    applied = await claim(session, self.name, wanted)
                    if applied:
                        await self._handle(session, applied)
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        self.applied += len(applied)
        self.duplicates += len(wanted) - len(applied)
        await self._after_commit(applied)
        return True

    def _decode(self, record: ConsumerRecord[Any, Any]) -> Envelope | None:
        """The record's envelope, or None when this consumer has nothing to do for it."""
        if self.passes_over is not None and self.passes_over(record.key):
            self.passed_over += 1
            return None
        return decode_wanted(record.value, record.headers, self.event_types)

    async def _handle(self, session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        if self.batch_handler is not None:
            await self.batch_handler(session, envelopes)
            return
        assert self.handler is not None
        for envelope in envelopes:
            await self.handler(session, envelope)

    async def _after_commit(self, envelopes: Sequence[Envelope]) -> None:
        if self.after_commit is None:
            return
        for envelope in envelopes:
            with contextlib.suppress(Exception):
                await self.after_commit(envelope)

    async def _process(self, tp: TopicPartition, record: ConsumerRecord[Any, Any], producer: Any) -> None:
        try:
            envelope = self._decode(record)
        except Exception as exc:
            await self._dead_letter(tp, record, producer, exc, attempts=1, reason="undecodable")
            return
        if envelope is None:
            return
        failures = 0
        transient = 0
        while True:
            try:
                applied = await self._apply(envelope)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    transient += 1
                    await self._stall(tp, transient, exc)
                    continue
                failures += 1
                logger.warning(
                    "consumer %s: %s %s attempt %d failed: %s",
                    self.name,
                    envelope.event_type,
                    envelope.event_id,
                    failures,
                    exc,
                )
                # A payload that fails validation fails the same way every time: no point in retrying it.
                invalid = isinstance(exc, ValidationError)
                if invalid or failures >= self.max_attempts:
                    self._unstall(tp)
                    reason = "invalid" if invalid else "handler"
                    await self._dead_letter(tp, record, producer, exc, attempts=failures, reason=reason)
                    return
                await asyncio.sleep(self.backoff_s * 2 ** (failures - 1))
                continue
            self._unstall(tp)
            if applied:
                await self._after_commit([envelope])
            return

    async def _apply(self, envelope: Envelope) -> bool:
        async with self.sessions() as session, session.begin():
            if not await claim(session, self.name, [envelope]):
                self.duplicates += 1
                return False
            await self._handle(session, [envelope])
        self.applied += 1
        return True

    async def _stall(self, tp: TopicPartition, attempts: int, error: BaseException) -> None:
        """Record and report a transient failure, then wait (capped exponential backoff) before the retry."""
        self.transient_failures += 1
        note_stall(self.name, self.stalled, tp, attempts, error)
        if self.on_stall is not None:
            with contextlib.suppress(Exception):
                self.on_stall(self.name, tp, attempts, error)
        await asyncio.sleep(min(self.backoff_s * 2 ** min(attempts - 1, 16), self.max_backoff_s))

    def _unstall(self, tp: TopicPartition) -> None:
        note_resumed(self.name, self.stalled, tp)

    async def _dead_letter(
        self,
        tp: TopicPartition,
        record: ConsumerRecord[Any, Any],
        producer: Any,
        error: BaseException,
        *,
        attempts: int,
        reason: str,
    ) -> None:
        headers = dead_letter_headers(record, consumer=self.name, error=error, attempts=attempts, reason=reason)

        async def stall(failures: int, exc: BaseException) -> None:
            await self._stall(tp, failures, exc)

        await send_dead_letter(producer, record, headers, timeout_s=self.kafka.send_timeout_s, on_transient=stall)
        self._unstall(tp)
        self.dead_lettered += 1
        self.dead_lettered_by_topic[record.topic] = self.dead_lettered_by_topic.get(record.topic, 0) + 1
        logger.error(
            "consumer %s: record %s/%s/%s dead-lettered (%s) after %d attempts: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            reason,
            attempts,
            error,
        )
