"""A harness that pushes events through outbox -> broker -> inbox and records what was applied.

Used by the pipeline fault tests and by `make bench`. The consumer side runs as its own process
(`python -m sous_local.pipeline consume ...`) so tests can SIGKILL it mid-stream.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sous_events.consumer import ConsumerRunner
from sous_events.envelope import Envelope
from sous_events.events import AgentMetricsUpdated
from sous_events.kafka import KafkaConfig
from sous_events.registry import make_event
from sous_events.store import EventStore
from sous_events.tables import metadata
from sous_events.topics import QUALITY

TOPIC = QUALITY

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS pipeline_applied (
        seq bigserial PRIMARY KEY, consumer text NOT NULL, event_id text NOT NULL, aggregate_id text NOT NULL,
        aggregate_version int NOT NULL, occurred_at timestamptz NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    """CREATE TABLE IF NOT EXISTS pipeline_heads (
        consumer text NOT NULL, aggregate_id text NOT NULL, version int NOT NULL,
        PRIMARY KEY (consumer, aggregate_id))""",
    """CREATE TABLE IF NOT EXISTS pipeline_violations (
        consumer text NOT NULL, aggregate_id text NOT NULL, expected int NOT NULL, got int NOT NULL)""",
]


async def prepare(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        for statement in SCHEMA:
            await conn.execute(text(statement))


def pipeline_event(workspace_id: str, aggregate_id: str, version: int, *, poison: bool = False) -> Envelope:
    return make_event(
        AgentMetricsUpdated(agent_id=aggregate_id, metrics={"n": version, "poison": poison}),
        producer="pipeline",
        workspace_id=workspace_id,
        aggregate_id=aggregate_id,
        aggregate_version=version,
    )


async def produce(
    sessions: async_sessionmaker[AsyncSession],
    workspace_id: str,
    *,
    aggregates: int,
    per_aggregate: int,
    per_transaction: int = 10,
    start_version: int = 1,
    stream_prefix: str = "",
) -> int:
    """Append events round-robin over the aggregates; each stream gets consecutive versions.

    A transaction appends the next `per_transaction` events of that order in one statement (several
    consecutive versions of a stream when it holds more events than there are aggregates)."""
    store = EventStore()
    names = [f"{stream_prefix or workspace_id}-agg-{i:03d}" for i in range(aggregates)]
    order = [(name, version) for version in range(start_version, start_version + per_aggregate) for name in names]
    for chunk_start in range(0, len(order), per_transaction):
        streams: dict[str, list[Envelope]] = {}
        for name, version in order[chunk_start : chunk_start + per_transaction]:
            streams.setdefault(name, []).append(pipeline_event(workspace_id, name, version))
        async with sessions() as session, session.begin():
            await store.append_streams(
                session, [(events, events[0].aggregate_version - 1) for events in streams.values()]
            )
    return len(order)


def make_handler(consumer: str, workspace_id: str):  # type: ignore[no-untyped-def]
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.workspace_id != workspace_id:
            return
        if envelope.payload.get("metrics", {}).get("poison"):
            raise ValueError(f"poison event {envelope.event_id}")
        await session.execute(
            text(
                "INSERT INTO pipeline_applied (consumer, event_id, aggregate_id, aggregate_version, occurred_at) "
                "VALUES (:c, :e, :a, :v, :o)"
            ),
            {
                "c": consumer,
                "e": envelope.event_id,
                "a": envelope.aggregate_id,
                "v": envelope.aggregate_version,
                "o": envelope.occurred_at,
            },
        )
        head = (
            await session.execute(
                text("SELECT version FROM pipeline_heads WHERE consumer = :c AND aggregate_id = :a FOR UPDATE"),
                {"c": consumer, "a": envelope.aggregate_id},
            )
        ).scalar()
        # Poison events are never applied, so a stream may legitimately skip their versions.
        expected = (head or 0) + 1
        if envelope.aggregate_version < expected:
            await session.execute(
                text("INSERT INTO pipeline_violations VALUES (:c, :a, :x, :g)"),
                {"c": consumer, "a": envelope.aggregate_id, "x": expected, "g": envelope.aggregate_version},
            )
        await session.execute(
            text(
                "INSERT INTO pipeline_heads VALUES (:c, :a, :v) ON CONFLICT (consumer, aggregate_id) "
                "DO UPDATE SET version = GREATEST(pipeline_heads.version, EXCLUDED.version)"
            ),
            {"c": consumer, "a": envelope.aggregate_id, "v": envelope.aggregate_version},
        )

    return handle


APPLY_BATCH_SQL = (
    "INSERT INTO pipeline_applied (consumer, event_id, aggregate_id, aggregate_version, occurred_at) "
    "SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::timestamptz[])"
)
HEADS_SQL = (
    "INSERT INTO pipeline_heads SELECT $1, * FROM unnest($2::text[], $3::int[]) ON CONFLICT (consumer, aggregate_id) "
    "DO UPDATE SET version = GREATEST(pipeline_heads.version, EXCLUDED.version)"
)


def make_batch_handler(consumer: str, workspace_id: str):  # type: ignore[no-untyped-def]
    """The same effects as make_handler's, for a batch of envelopes in a few statements (arrays, not rows)."""

    async def handle(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        mine = [e for e in envelopes if e.workspace_id == workspace_id]
        for envelope in mine:
            if envelope.payload.get("metrics", {}).get("poison"):
                raise ValueError(f"poison event {envelope.event_id}")
        if not mine:
            return
        connection = await session.connection()
        await connection.exec_driver_sql(
            APPLY_BATCH_SQL,
            (
                consumer,
                [e.event_id for e in mine],
                [e.aggregate_id for e in mine],
                [e.aggregate_version for e in mine],
                [e.occurred_at for e in mine],
            ),
        )
        aggregates = sorted({e.aggregate_id for e in mine})
        rows = await session.execute(
            text(
                "SELECT aggregate_id, version FROM pipeline_heads WHERE consumer = :c AND aggregate_id = ANY(:a) "
                "ORDER BY aggregate_id FOR UPDATE"
            ),
            {"c": consumer, "a": aggregates},
        )
        heads = {str(a): int(v) for a, v in rows.all()}
        violations = []
        for envelope in mine:
            expected = heads.get(envelope.aggregate_id, 0) + 1
            if envelope.aggregate_version < expected:
                violations.append(
                    {"c": consumer, "a": envelope.aggregate_id, "x": expected, "g": envelope.aggregate_version}
                )
            heads[envelope.aggregate_id] = max(heads.get(envelope.aggregate_id, 0), envelope.aggregate_version)
        if violations:
            await session.execute(text("INSERT INTO pipeline_violations VALUES (:c, :a, :x, :g)"), violations)
        await connection.exec_driver_sql(HEADS_SQL, (consumer, aggregates, [heads[a] for a in aggregates]))

    return handle


@dataclass
class PipelineStats:
    applied: int
    distinct: int
    violations: int


async def stats(engine: AsyncEngine, consumer: str) -> PipelineStats:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT count(*), count(DISTINCT event_id) FROM pipeline_applied WHERE consumer = :c"),
                {"c": consumer},
            )
        ).one()
        violations = (
            await conn.execute(text("SELECT count(*) FROM pipeline_violations WHERE consumer = :c"), {"c": consumer})
        ).scalar_one()
    return PipelineStats(int(row[0]), int(row[1]), int(violations))


def consumer_runner(
    database_url: str, bootstrap: str, consumer: str, workspace_id: str, *, batch: bool = False, **kw: object
) -> ConsumerRunner:
    """The pipeline's consumer; `batch` applies each fetched batch with make_batch_handler."""
    engine = create_async_engine(database_url, pool_size=8)
    return ConsumerRunner(
        name=consumer,
        topics=[TOPIC],
        handler=None if batch else make_handler(consumer, workspace_id),
        batch_handler=make_batch_handler(consumer, workspace_id) if batch else None,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        kafka=KafkaConfig(bootstrap=bootstrap),
        event_types={"AgentMetricsUpdated"},
        **kw,  # type: ignore[arg-type]
    )


async def _consume_forever(args: argparse.Namespace) -> None:
    runner = consumer_runner(
        args.database_url, args.bootstrap, args.consumer, args.workspace, max_attempts=args.max_attempts, backoff_s=0.05
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner.start()
    await stop.wait()
    await runner.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="sous_local.pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    consume = sub.add_parser("consume")
    consume.add_argument("--database-url", required=True)
    consume.add_argument("--bootstrap", required=True)
    consume.add_argument("--consumer", required=True)
    consume.add_argument("--workspace", required=True)
    consume.add_argument("--max-attempts", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_consume_forever(args))


if __name__ == "__main__":
    main()
