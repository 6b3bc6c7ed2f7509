"""Integration fixtures: the marketplace app with its lifespan on a fresh database and the real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from sous_events import topics
from sous_events.codec import decode, encode, kafka_headers, kafka_key
from sous_events.envelope import Envelope
from sous_events.events import AgentRegistered, RecipeCreated
from sous_events.ids import new_id
from sous_events.registry import make_event, topic_for
from sous_local.testing import unique
from sous_marketplace.adapters.tables import agent_replicas, recipe_replicas
from sous_marketplace.bootstrap import SERVICE, build_app
from sous_marketplace.config import MarketplaceSettings
from sous_service.internal_client import rebind_hook
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context
from sous_service.runtime import ServiceRuntime


async def wait_for(predicate: Callable[[], Awaitable[bool]], within_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# What the gateway grants every workspace member (the routes re-check them).
MEMBER = ("recipes:read", "recipes:write", "marketplace:submit")


@dataclass
class Marketplace:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: ServiceRuntime
    settings: MarketplaceSettings
    producer: AIOKafkaProducer

    def headers(
        self, workspace: str, user: str, roles: tuple[str, ...] = (), scopes: tuple[str, ...] = MEMBER
    ) -> dict[str, str]:
        context = InternalContext(workspace_id=workspace, user_id=user, roles=roles, scopes=scopes)
        return {CONTEXT_HEADER: sign_context(context, self.settings.internal_secret)}

    def moderator(self) -> dict[str, str]:
        return self.headers(unique("ws-mod"), unique("mod"), scopes=(*MEMBER, "marketplace:moderate"))

    async def publish(self, *events: Envelope) -> None:
        for event in events:
            await self.producer.send_and_wait(
                topic_for(event.event_type), value=encode(event), key=kafka_key(event), headers=kafka_headers(event)
            )

    async def count(self, table: Any, *where: Any) -> int:
        async with self.runtime.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(table).where(*where))).scalar_one())

    async def seed_recipe(
        self,
        workspace: str,
        template_id: str,
        *,
        name: str | None = None,
        tags: list[str] | None = None,
        agent_name: str = "Writer",
    ) -> dict[str, Any]:
        """Publish an AgentRegistered and a RecipeCreated as the catalog would, and wait for the replicas."""
        agent_id = new_id()
        agent = {
            "id": agent_id,
            "workspace_id": workspace,
            "name": agent_name,
            "description": "writes summaries",
            "model_config": {
                "provider": "openai",
                "model_id": "sous-offline",
                "base_url": "http://127.0.0.1:9/v1",
                "api_key_env": "OPENAI_API_KEY",
                "temperature": 0.1,
            },
            "skills": ["calculator"],
            "configuration": {"max_iterations": 3},
            "status": "active",
        }
        recipe_id = new_id()
        recipe = {
            "id": recipe_id,
            "workspace_id": workspace,
            "template_id": template_id,
            "name": name or f"Recipe {template_id}",
            "description": "Summarise the news",
            "tags": tags if tags is not None else ["news"],
            "template_definition": {},
            "steps": [{"step_id": "s1", "order": 1, "agent_id": agent_id, "prompt_template": "Summarise {topic}"}],
            "inputs": {"topic": {"type": "string", "required": True}},
            "outputs": {},
            "execution_config": {"mode": "sequential"},
            "schedule_config": {"type": "manual"},
            "learning_data": {"private": "of the source workspace"},
            "use_count": 3,
            "revision": 1,
            "created_by": "someone",
        }
        await self.publish(
            make_event(
                AgentRegistered(agent=agent),
                producer="catalog",
                workspace_id=workspace,
                aggregate_id=agent_id,
                aggregate_version=1,
            ),
            make_event(
                RecipeCreated(recipe=recipe),
                producer="catalog",
                workspace_id=workspace,
                aggregate_id=recipe_id,
                aggregate_version=1,
            ),
        )

        async def replicated() -> bool:
            return (
                await self.count(recipe_replicas, recipe_replicas.c.recipe_id == recipe_id) == 1
                and await self.count(agent_replicas, agent_replicas.c.agent_id == agent_id) == 1
            )

        await wait_for(replicated, what=f"replica of {template_id}")
        return {"recipe": recipe, "agent": agent}


@pytest.fixture
async def marketplace(infra: Any, fresh_database: str) -> AsyncIterator[Marketplace]:
    """The marketplace with the quality gate open (tests of the gate use `gated_marketplace`)."""
    async with running_marketplace(infra, fresh_database, gate_min_score=0.0, gate_min_runs=0) as running:
        yield running


@pytest.fixture
async def gated_marketplace(infra: Any, fresh_database: str) -> AsyncIterator[Marketplace]:
    """Approval needs a rolling score of 0.7 over 3 assessed runs; quality is not reachable unless a test says."""
    async with running_marketplace(infra, fresh_database, gate_min_score=0.7, gate_min_runs=3) as running:
        yield running


@asynccontextmanager
async def running_marketplace(infra: Any, fresh_database: str, **overrides: Any) -> AsyncIterator[Marketplace]:
    settings = MarketplaceSettings(
        env="test",
        database_url=fresh_database,
        database_name=make_url(fresh_database).database or "",
        kafka_bootstrap=infra.kafka_bootstrap,
        consumer_group=unique("marketplace-test"),
        database_pool_size=4,
        quality_url="",
        catalog_url="",
        **overrides,
    )
    await SERVICE.migrate_async(settings)
    app = build_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://marketplace",
                event_hooks={"request": [rebind_hook(settings.internal_secret, "marketplace")]},
            ) as client:
                yield Marketplace(app, client, app.state.runtime, settings, producer)
    finally:
        await producer.stop()


async def consume_marketplace_events(
    bootstrap: str, predicate: Callable[[Envelope], bool], expected: int, within_s: float = 30.0
) -> list[Envelope]:
    """Read sous.marketplace.v1 from the beginning until `expected` matching envelopes arrived."""
    consumer = AIOKafkaConsumer(
        topics.MARKETPLACE, bootstrap_servers=bootstrap, group_id=unique("probe"), auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Envelope] = []
    try:
        deadline = time.monotonic() + within_s
        while len(found) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    envelope = decode(record.value)
                    if predicate(envelope):
                        found.append(envelope)
    finally:
        await consumer.stop()
    return found
