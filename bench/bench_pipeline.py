"""Benchmark: events/s and end-to-end latency through outbox -> broker -> inbox.

Starts its own PostgreSQL and broker (embedded by default, `--broker kafka` for Apache Kafka), appends
N events over 50 aggregates while a relay and a consumer run in this process, and reports throughput
and the p50/p99 of (applied_at - occurred_at).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from sous_events.kafka import KafkaConfig, ensure_topics
from sous_events.outbox import OutboxRelay
from sous_local.pipeline import consumer_runner, prepare, produce, stats
from sous_local.testing import create_database


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(broker_kind: str, events: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="sous-bench-"))
    from sous_local.postgres import EmbeddedPostgres

    pg = EmbeddedPostgres(root / "pg", durable=False)
    pg.start()
    if broker_kind == "kafka":
        from sous_local.kafka_lane import ApacheKafka

        broker = ApacheKafka(root / "kafka")
    else:
        from sous_local.broker import EmbeddedBroker

        broker = EmbeddedBroker(root / "broker")  # type: ignore[assignment]
    broker.start()
    try:
        url = await create_database(pg.url, "bench")
        engine = create_async_engine(url, pool_size=10)
        await prepare(engine)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        kafka = KafkaConfig(bootstrap=broker.bootstrap, idempotence=broker_kind == "kafka")
        await ensure_topics(kafka)
        workspace = f"bench-{uuid.uuid4().hex[:6]}"
        relay = OutboxRelay(name="bench", database_url=url, kafka=kafka)
        runner = consumer_runner(url, broker.bootstrap, "bench-consumer", workspace)
        relay.start()
        runner.start()
        started = time.perf_counter()
        produced = await produce(sessions, workspace, aggregates=50, per_aggregate=events // 50)
        produce_s = time.perf_counter() - started
        while (await stats(engine, "bench-consumer")).distinct < produced:
            await asyncio.sleep(0.05)
        total_s = time.perf_counter() - started
        async with engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        text("SELECT extract(epoch FROM applied_at - occurred_at) * 1000 FROM pipeline_applied")
                    )
                )
                .scalars()
                .all()
            )
            relay_ms = (
                await conn.execute(
                    text(
                        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at) * 1000) "
                        "FROM outbox"
                    )
                )
            ).scalar_one()
        latencies = [float(r) for r in rows]
        paced = await _paced_latency(engine, sessions, workspace, rate=200, seconds=10)
        await runner.stop()
        await relay.stop()
        await engine.dispose()
        print(f"broker={broker_kind} events={produced}")
        print(f"  append rate:          {produced / produce_s:,.0f} events/s")
        print(f"  end-to-end throughput: {produced / total_s:,.0f} events/s (append -> applied, {total_s:.1f}s)")
        print(f"  outbox -> broker (relay) p50: {float(relay_ms):.1f} ms")
        print(
            f"  latency at saturation p50: {statistics.median(latencies):.1f} ms  "
            f"p99: {_percentile(latencies, 0.99):.1f} ms"
        )
        print(
            f"  latency at 200 events/s p50: {statistics.median(paced):.1f} ms  p99: {_percentile(paced, 0.99):.1f} ms"
        )
    finally:
        broker.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _paced_latency(engine, sessions, workspace: str, *, rate: int, seconds: int) -> list[float]:  # type: ignore[no-untyped-def]
    """End-to-end latency when the pipeline is not saturated: one 10-event transaction every 10/rate s."""
    async with engine.connect() as conn:
        mark = (await conn.execute(text("SELECT coalesce(max(seq), 0) FROM pipeline_applied"))).scalar_one()
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
    while True:
        async with engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        text(
                            "SELECT extract(epoch FROM applied_at - occurred_at) * 1000 FROM pipeline_applied WHERE seq > :m"
                        ),
                        {"m": mark},
                    )
                )
                .scalars()
                .all()
            )
        if len(rows) >= expected:
            return [float(r) for r in rows]
        await asyncio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", choices=["embedded", "kafka"], default="embedded")
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(run(args.broker, args.events))


if __name__ == "__main__":
    main()
