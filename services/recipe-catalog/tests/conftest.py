"""Fixtures for the catalog's integration tests: the real app on a fresh database and the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI

from sous_catalog.bootstrap import SERVICE, build_app
from sous_catalog.config import CatalogSettings
from sous_events import topics
from sous_events.codec import decode, encode, kafka_headers, kafka_key
from sous_events.envelope import Envelope
from sous_local.testing import create_database, unique
from sous_service.internal_client import rebind_hook
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context


def sign(settings: CatalogSettings, workspace_id: str, **kw: Any) -> dict[str, str]:
    context = InternalContext(
        workspace_id=workspace_id, user_id=kw.pop("user_id", "user-1"), scopes=kw.pop("scopes", ("*",)), **kw
    )
    return {CONTEXT_HEADER: sign_context(context, settings.internal_secret)}


async def wait_for(check: Callable[[], Awaitable[Any]], within: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(interval)


def recipe_body(agent_id: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template_id": unique("recipe"),
        "name": "Summarise news",
        "description": "Fetches and summarises the news",
        "tags": ["research", "news"],
        "template_definition": {"kind": "pipeline"},
        "steps": [
            {"step_id": "fetch", "order": 1, "agent_id": agent_id, "prompt_template": "Fetch {input.topic}"},
            {
                "step_id": "summarise",
                "order": 2,
                "agent_id": agent_id,
                "prompt_template": "Summarise {steps.fetch.output}",
                "depends_on": ["fetch"],
                "error_handling": "retry",
            },
        ],
        "inputs": {"topic": {"type": "string", "required": True}},
        "outputs": {"summary": {"type": "string"}},
    }
    body.update(over)
    return body


@dataclass
class Catalog:
    app: FastAPI
    settings: CatalogSettings
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    workspace: str = field(default_factory=lambda: unique("ws"))
    body = staticmethod(recipe_body)
    wait_for = staticmethod(wait_for)

    def headers(self, workspace_id: str | None = None, **kw: Any) -> dict[str, str]:
        return sign(self.settings, workspace_id or self.workspace, **kw)

    async def request(
        self, method: str, path: str, *, workspace: str | None = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        all_headers = {**self.headers(workspace), **(headers or {})}
        return await self.http.request(method, path, headers=all_headers, **kw)

    async def agent(self, workspace: str | None = None, **over: Any) -> dict[str, Any]:
        body = {
            "name": over.pop("name", unique("agent")),
            "description": "writes things",
            "model_config": {"provider": "offline", "model_id": "echo-1", "api_key_secret": "offline-key"},
            "skills": ["calculator"],
            **over,
        }
        response = await self.request("POST", "/api/agents", workspace=workspace, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def recipe(self, workspace: str | None = None, agent_id: str | None = None, **over: Any) -> dict[str, Any]:
        if agent_id is None:
            agent_id = (await self.agent(workspace))["id"]
        body = recipe_body(agent_id, **over)
        response = await self.request("POST", "/api/workflow-recipes", workspace=workspace, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json()["recipe"])

    async def publish(self, envelope: Envelope) -> None:
        from sous_events.registry import topic_for

        await self.producer.send_and_wait(
            topic_for(envelope.event_type),
            value=encode(envelope),
            key=kafka_key(envelope),
            headers=kafka_headers(envelope),
        )


@dataclass
class RunningCatalog:
    app: FastAPI
    settings: CatalogSettings
    http: httpx.AsyncClient
    producer: AIOKafkaProducer


@pytest.fixture(scope="module")
async def catalog_app(infra: Any) -> AsyncIterator[RunningCatalog]:
    """One running catalog per test module (its own database and consumer group); tests use their own workspaces."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    database_url = await create_database(infra.database_url, name)
    settings = CatalogSettings(
        env="test",
        database_url=database_url,
        database_name=name,
        kafka_bootstrap=infra.kafka_bootstrap,
        consumer_group=unique("catalog"),
        consumer_backoff_s=0.05,
        database_pool_size=12,
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
                base_url="http://catalog",
                timeout=60,
                event_hooks={"request": [rebind_hook(settings.internal_secret, "catalog")]},
            ) as http:
                yield RunningCatalog(app=app, settings=settings, http=http, producer=producer)
    finally:
        await producer.stop()


@pytest.fixture
def catalog(catalog_app: RunningCatalog) -> Catalog:
    """The running catalog, seen from a workspace of this test's own."""
    return Catalog(
        app=catalog_app.app, settings=catalog_app.settings, http=catalog_app.http, producer=catalog_app.producer
    )


class EventTap:
    """A consumer on the catalog topics (its own group) that keeps the events of some workspaces."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topics.CATALOG_RECIPES,
            topics.CATALOG_AGENTS,
            bootstrap_servers=bootstrap,
            group_id=unique("tap"),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.events: list[Envelope] = []

    async def poll(self, workspace_id: str) -> list[Envelope]:
        batches = await self.consumer.getmany(timeout_ms=300)
        for records in batches.values():
            for record in records:
                envelope = decode(record.value)
                if envelope.workspace_id == workspace_id:
                    self.events.append(envelope)
        return self.events

    async def wait_for(self, workspace_id: str, count: int, within: float = 30.0) -> list[Envelope]:
        async def enough() -> bool:
            return len(await self.poll(workspace_id)) >= count

        await wait_for(enough, within=within, interval=0)
        return self.events


@pytest.fixture
async def tap(infra: Any) -> AsyncIterator[EventTap]:
    event_tap = EventTap(infra.kafka_bootstrap)
    await event_tap.consumer.start()
    try:
        yield event_tap
    finally:
        await event_tap.consumer.stop()
