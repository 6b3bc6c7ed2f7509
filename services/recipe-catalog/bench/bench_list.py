"""Benchmark: list recipes (search + sort + page) with 10,000 recipes in one workspace, over real HTTP.

    .venv/bin/python services/recipe-catalog/bench/bench_list.py [--recipes 10000] [--requests 2000] [--concurrency 8]

Uses SOUS_DATABASE_URL / SOUS_KAFKA_BOOTSTRAP when set, else starts an embedded PostgreSQL and broker.
Seeds through the catalog's handlers (event store + outbox + projection, 500 recipes per transaction) into a
new database, starts `python -m sous_catalog serve` on a free port, waits for the outbox to drain, then
measures p50/p99 latency and requests/s of `GET /api/workflow-recipes?search=..&sort_by=..&skip=..&limit=..`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text, update

from sous_catalog.adapters.tables import recipes
from sous_catalog.bootstrap import SERVICE
from sous_catalog.commands import CreateRecipe, RegisterAgent
from sous_catalog.config import CatalogSettings
from sous_catalog.handlers import CatalogHandlers, unit_of_works
from sous_local.ports import free_port
from sous_service.caller import Caller
from sous_service.db import create_engine, create_session_factory
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context

WORDS = [
    "report",
    "digest",
    "summary",
    "invoice",
    "tweet",
    "research",
    "market",
    "sales",
    "weekly",
    "daily",
    "finance",
    "social",
    "news",
    "email",
    "translate",
    "classify",
    "extract",
    "review",
    "triage",
    "forecast",
    "audit",
    "onboarding",
    "support",
    "legal",
    "code",
    "security",
]
SORTS = ("popularity", "created_at", "use_count", "average_rating", "name")


def start_infra(root: Path) -> tuple[str, str, list[Any]]:
    stoppers: list[Any] = []
    database_url = os.environ.get("SOUS_DATABASE_URL", "")
    bootstrap = os.environ.get("SOUS_KAFKA_BOOTSTRAP", "")
    if not database_url:
        from sous_local.postgres import EmbeddedPostgres

        pg = EmbeddedPostgres(root / "postgres", durable=False)
        pg.start()
        stoppers.append(pg)
        database_url = pg.url
    if not bootstrap:
        from sous_local.broker import EmbeddedBroker

        broker = EmbeddedBroker(root / "broker")
        broker.start()
        stoppers.append(broker)
        bootstrap = broker.bootstrap
    return database_url, bootstrap, stoppers


async def seed(settings: CatalogSettings, workspace: str, count: int) -> float:
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    handlers = CatalogHandlers.create()
    uows = unit_of_works(sessions)
    caller = Caller(workspace_id=workspace, user_id="bench")
    rng = random.Random(7)
    started = time.perf_counter()
    async with sessions.begin() as session:
        agent = await handlers.agents.register(
            RegisterAgent(
                agent={
                    "name": "bench",
                    "model_config": {"provider": "offline", "model_id": "echo"},
                    "skills": ["calculator"],
                }
            ),
            uows.joined(session, caller),
        )
    done = 0
    while done < count:
        async with sessions.begin() as session:
            for i in range(done, min(done + 500, count)):
                words = rng.sample(WORDS, 4)
                recipe = CreateRecipe(
                    recipe={
                        "template_id": f"recipe-{i:05d}",
                        "name": f"{words[0].title()} {words[1]} {i}",
                        "description": f"Does {words[2]} and {words[3]} for the team",
                        "tags": [words[0]],
                        "template_definition": {},
                        "steps": [
                            {"step_id": "one", "order": 1, "agent_id": agent["id"], "prompt_template": "go"},
                            {"step_id": "two", "order": 2, "agent_id": agent["id"], "depends_on": ["one"]},
                        ],
                    }
                )
                await handlers.recipes.create(recipe, uows.joined(session, caller))
        done = min(done + 500, count)
    async with sessions.begin() as session:  # realistic statistics to sort on
        await session.execute(
            update(recipes)
            .where(recipes.c.workspace_id == workspace)
            .values(
                use_count=text("(random() * 500)::int"),
                popularity=text("random() * 400"),
                average_rating=text("round((random() * 5)::numeric, 1)"),
            )
        )
        await session.execute(text("ANALYZE recipes"))
    await engine.dispose()
    return time.perf_counter() - started


async def outbox_drained(settings: CatalogSettings, timeout_s: float = 300) -> None:
    engine = create_engine(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                left = (await conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))).scalar_one()
            if left == 0:
                return
            await asyncio.sleep(0.5)
        raise RuntimeError("outbox did not drain")
    finally:
        await engine.dispose()


async def explain(settings: CatalogSettings, workspace: str) -> str:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "EXPLAIN ANALYZE SELECT * FROM recipes WHERE workspace_id = :ws AND is_public "
                    "AND search_text LIKE '%report%' ORDER BY popularity DESC, id LIMIT 20 OFFSET 40"
                ),
                {"ws": workspace},
            )
            return "\n".join(r[0] for r in rows)
    finally:
        await engine.dispose()


async def load(port: int, headers: dict[str, str], total: int, concurrency: int) -> list[float]:
    rng = random.Random(11)
    latencies: list[float] = []
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for _ in range(total):
        queue.put_nowait(
            {
                "search": rng.choice(WORDS)[: rng.choice((3, 5, 8))],
                "sort_by": rng.choice(SORTS),
                "skip": rng.choice((0, 0, 20, 100)),
                "limit": 20,
            }
        )

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            params = queue.get_nowait()
            started = time.perf_counter()
            response = await client.get("/api/workflow-recipes", params=params, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(response.text)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies


async def main_async(args: argparse.Namespace, database_url: str, bootstrap: str) -> None:
    name = f"sous_catalog_bench_{uuid.uuid4().hex[:8]}"
    settings = CatalogSettings(database_url=database_url, database_name=name, kafka_bootstrap=bootstrap)
    await SERVICE.migrate_async(settings)
    workspace = "bench-workspace"
    seconds = await seed(settings, workspace, args.recipes)
    print(f"seeded {args.recipes} recipes through the handlers in {seconds:.1f}s ({args.recipes / seconds:.0f}/s)")
    port = free_port()
    env = {
        **os.environ,
        "SOUS_DATABASE_URL": database_url,
        "SOUS_DATABASE_NAME": name,
        "SOUS_KAFKA_BOOTSTRAP": bootstrap,
        "SOUS_CATALOG_PORT": str(port),
        "SOUS_LOG_LEVEL": "WARNING",
    }
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "sous_catalog", "serve", env=env)
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(200):
                try:
                    if (await probe.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        await outbox_drained(settings)

        # a context is fresh for internal_context_max_age_s: sign one per run
        def headers() -> dict[str, str]:
            context = InternalContext(workspace_id=workspace, user_id="bench", scopes=("*",))
            return {CONTEXT_HEADER: sign_context(context, settings.internal_secret)}

        await load(port, headers(), 100, args.concurrency)  # warm-up
        started = time.perf_counter()
        latencies = await load(port, headers(), args.requests, args.concurrency)
        elapsed = time.perf_counter() - started
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print(
            f"list (search + sort + page, limit 20) over {args.recipes} recipes: "
            f"{len(latencies)} requests, concurrency {args.concurrency}: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {len(latencies) / elapsed:.0f} req/s"
        )
        if args.explain:
            print(await explain(settings, workspace))
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--explain", action="store_true", help="print the query plan of one list query")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sous-bench-"))
    database_url, bootstrap, stoppers = start_infra(root)
    try:
        asyncio.run(main_async(args, database_url, bootstrap))
    finally:
        for thing in reversed(stoppers):
            thing.stop()


if __name__ == "__main__":
    main()
