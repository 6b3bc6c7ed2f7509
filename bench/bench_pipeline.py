"""Benchmark: events/s and end-to-end latency through outbox -> broker -> inbox.

Starts its own PostgreSQL and broker (embedded by default, `--broker kafka` for Apache Kafka). Several
writer processes (`--writers`) append events, `--per-transaction` (100) per transaction in one statement
over their own aggregates, while the relay runs in this process and an idempotent consumer in its own
process, as in a deployment. Reports the append rate, the end-to-end rate (first append -> last event
applied), the CPU per event of each role, the relay's p50 and the p50/p99 of (applied_at - occurred_at) at
saturation and paced (one writer at `--paced-rate` events/s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import shutil
import statistics
import tempfile
import time
import uuid
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sous_events.kafka import KafkaConfig, ensure_topics
from sous_events.outbox import OutboxRelay
from sous_local.pipeline import consumer_runner, prepare, produce, stats
from sous_local.testing import create_database
from sous_service.config import ServiceSettings

CONSUMER = "bench-consumer"
AGGREGATES_PER_WRITER = 20


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _process_cpu_s(pid: int | None, *, tree: bool = False) -> float:
    """CPU seconds of one process (with `tree`, and of its descendants, exited ones included): one role."""
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)] if tree else [root]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
            if tree:
                total += times.children_user + times.children_system
    return total


def _roles_cpu_s(pg: Any, broker: Any, consumer_pid: int | None) -> dict[str, float]:
    return {
        "relay": _process_cpu_s(psutil.Process().pid),
        "consumer": _process_cpu_s(consumer_pid),
        "postgres": _process_cpu_s(pg.pid if pg else None, tree=True),
        "broker": _process_cpu_s(broker.pid if broker else None, tree=True),
    }


def _consumer_process(url: str, bootstrap: str, workspace: str, batch: bool, ready: ProcessEvent) -> None:
    async def consume() -> None:
        # Without `batch` the harness's per-event handler (also how the code before batch handlers is measured).
        runner = consumer_runner(url, bootstrap, CONSUMER, workspace, **({"batch": True} if batch else {}))
        runner.start()
        await runner.joined.wait()
        ready.set()
        while True:
            await asyncio.sleep(3600)

    asyncio.run(consume())


def _writer_process(
    url: str,
    workspace: str,
    index: int,
    per_aggregate: int,
    per_transaction: int,
    go: ProcessEvent,
    ready: Any,
    done: Any,
) -> None:
    async def write() -> None:
        engine = create_async_engine(url, pool_size=2)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        # Imported and connected: on a loaded machine that takes seconds, which must not count as appending.
        ready.put(index)
        go.wait()
        began, cpu_began = time.perf_counter(), time.process_time()
        count = await produce(
            sessions,
            workspace,
            aggregates=AGGREGATES_PER_WRITER,
            per_aggregate=per_aggregate,
            per_transaction=per_transaction,
            stream_prefix=f"{workspace}-w{index}",
        )
        done.put((count, time.perf_counter() - began, time.process_time() - cpu_began))
        await engine.dispose()

    asyncio.run(write())


async def _heads_total(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        total = await conn.execute(
            text("SELECT coalesce(sum(version), 0) FROM pipeline_heads WHERE consumer = :c"), {"c": CONSUMER}
        )
        return int(total.scalar_one())


async def _latencies(engine: AsyncEngine, after_seq: int = 0) -> list[float]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT extract(epoch FROM applied_at - occurred_at) * 1000 FROM pipeline_applied WHERE seq > :m"),
            {"m": after_seq},
        )
        return [float(r) for r in rows.scalars()]


async def run(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="sous-bench-"))
    from sous_local.postgres import EmbeddedPostgres

    pg = EmbeddedPostgres(root / "pg", durable=False)
    pg.start()
    if args.broker == "kafka":
        from sous_local.kafka_lane import ApacheKafka

        broker = ApacheKafka(root / "kafka")
    else:
        from sous_local.broker import EmbeddedBroker

        broker = EmbeddedBroker(root / "broker")  # type: ignore[assignment]
    broker.start()
    spawn = multiprocessing.get_context("spawn")
    consumer = None
    try:
        url = await create_database(pg.url, "bench")
        engine = create_async_engine(url, pool_size=4)
        await prepare(engine)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        kafka = KafkaConfig(bootstrap=broker.bootstrap, idempotence=args.broker == "kafka")
        await ensure_topics(kafka)
        workspace = f"bench-{uuid.uuid4().hex[:6]}"
        # As a service runs it: with the default linger between passes that are not full.
        linger_s = ServiceSettings.model_fields["outbox_linger_ms"].default / 1000
        relay = OutboxRelay(name="bench", database_url=url, kafka=kafka, linger_s=linger_s)
        relay.start()
        ready = spawn.Event()
        consumer = spawn.Process(
            target=_consumer_process, args=(url, broker.bootstrap, workspace, args.handler == "batch", ready)
        )
        consumer.start()
        await asyncio.to_thread(ready.wait, 120)

        per_aggregate = max(1, args.events // (args.writers * AGGREGATES_PER_WRITER))
        go, ready_writers, done = spawn.Event(), spawn.Queue(), spawn.Queue()
        writers = [
            spawn.Process(
                target=_writer_process,
                args=(url, workspace, i, per_aggregate, args.per_transaction, go, ready_writers, done),
            )
            for i in range(args.writers)
        ]
        for writer in writers:
            writer.start()
        for _ in writers:
            await asyncio.to_thread(ready_writers.get)
        roles_before = _roles_cpu_s(pg.process, broker.process, consumer.pid)
        go.set()
        started = time.perf_counter()
        reports = [await asyncio.to_thread(done.get) for _ in writers]
        produced = sum(count for count, _, _ in reports)
        append_s = max(elapsed for _, elapsed, _ in reports)
        # Every stream's versions run 1..per_aggregate, so the streams' heads sum to `produced` once all is
        # applied: a poll that reads a few dozen rows, not the growing table of applied events.
        while await _heads_total(engine) < produced:
            await asyncio.sleep(0.02)
        total_s = time.perf_counter() - started
        for writer in writers:
            await asyncio.to_thread(writer.join)
        roles_after = _roles_cpu_s(pg.process, broker.process, consumer.pid)
        roles = {role: (roles_after[role] - roles_before[role]) * 1000 / produced for role in roles_after}
        # Writers report their own CPU from the start signal on: their start-up is not the pipeline's cost.
        roles["writers"] = sum(cpu for _, _, cpu in reports) * 1000 / produced
        cpu_ms = sum(roles.values())
        saturated = await _latencies(engine)
        async with engine.connect() as conn:
            relay_ms = (
                await conn.execute(
                    text(
                        "SELECT percentile_cont(0.5) WITHIN GROUP "
                        "(ORDER BY extract(epoch FROM sent_at - created_at) * 1000) FROM outbox"
                    )
                )
            ).scalar_one()
            mark = (await conn.execute(text("SELECT coalesce(max(seq), 0) FROM pipeline_applied"))).scalar_one()
        paced = await _paced_latency(engine, sessions, workspace, mark, rate=args.paced_rate, seconds=10)
        final = await stats(engine, CONSUMER)
        await relay.stop()
        await engine.dispose()
        print(
            f"broker={args.broker} events={produced} writers={args.writers} "
            f"({args.per_transaction} events per transaction) "
            f"handler={args.handler}"
        )
        print(f"  append rate:           {produced / append_s:,.0f} events/s")
        print(
            f"  end-to-end throughput: {produced / total_s:,.0f} events/s (first append -> all applied, {total_s:.1f}s)"
        )
        print(
            f"  CPU per event: {cpu_ms:.3f} ms (all processes) -> two free cores carry ~{2000 / cpu_ms:,.0f} events/s"
        )
        print("  CPU per event by role: " + ", ".join(f"{role} {ms:.3f} ms" for role, ms in roles.items()))
        print(f"  outbox -> broker (relay) p50: {float(relay_ms):.1f} ms")
        print(
            f"  latency at saturation p50: {statistics.median(saturated):.1f} ms  "
            f"p99: {_percentile(saturated, 0.99):.1f} ms"
        )
        print(
            f"  latency at {args.paced_rate} events/s p50: {statistics.median(paced):.1f} ms  "
            f"p99: {_percentile(paced, 0.99):.1f} ms"
        )
        print(f"  applied exactly once: {final.applied == final.distinct}, order violations: {final.violations}")
    finally:
        if consumer is not None:
            consumer.terminate()
            consumer.join(10)
        broker.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _paced_latency(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    workspace: str,
    mark: int,
    *,
    rate: int,
    seconds: int,
) -> list[float]:
    """End-to-end latency when the pipeline is not saturated: one 10-event transaction every 10/rate s."""
    for tick in range(rate * seconds // 10):
        began = time.perf_counter()
        await produce(
            sessions,
            workspace,
            aggregates=10,
            per_aggregate=1,
            start_version=tick + 1,
            stream_prefix=f"{workspace}-paced",
        )
        await asyncio.sleep(max(0.0, 10 / rate - (time.perf_counter() - began)))
    expected = rate * seconds
    while len(latencies := await _latencies(engine, mark)) < expected:
        await asyncio.sleep(0.1)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", choices=["embedded", "kafka"], default="embedded")
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--writers", type=int, default=4, help="appending processes")
    parser.add_argument("--per-transaction", type=int, default=100, help="events a writer appends per transaction")
    parser.add_argument(
        "--handler",
        choices=["batch", "per-event"],
        default="batch",
        help="the consumer applies a fetched batch with one batch handler call, or one handler call per event",
    )
    parser.add_argument("--paced-rate", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
