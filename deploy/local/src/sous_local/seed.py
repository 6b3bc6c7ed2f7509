"""A first run in the first minute: the default workspace gets a sample agent and a few system recipes.

System recipes (`is_system`) are protected: the public API refuses to create, change or delete them, so they
are written through the catalog's own path: its command handlers, in one transaction on the catalog's
database, acting as the platform (`auth_type="system"`). Events, outbox rows and read models commit together
exactly as for an API call, and the catalog's outbox relay publishes them, so the executor, quality and the
marketplace learn the recipes as they learn any other. Seeding is idempotent: what exists is left alone.

`python -m sous_local.seed --database-url postgresql+asyncpg://... [--workspace default]` seeds by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from sous_local.sync import run_async

if TYPE_CHECKING:
    from sous_local.stack import Stack

SEED_WORKSPACE = "default"
SEED_USER = "sous-seed"
SAMPLE_AGENT_NAME = "Sous sample agent"
CATALOG_DATABASE = "sous_catalog"


def sample_agent() -> dict[str, Any]:
    return {
        "name": SAMPLE_AGENT_NAME,
        "description": "A writer on the offline model server, with the calculator and text statistics tools.",
        "model_config": {"provider": "offline", "model_id": "sous-offline-1", "temperature": 0.2},
        "skills": ["calculator", "text_stats"],
        "configuration": {"max_iterations": 4},
    }


def system_recipes(agent_id: str) -> list[dict[str, Any]]:
    """Three recipes that show the engine: a chain, a parallel fan-out with a retried step, and a DAG.

    Prompts carry directives of the offline model server: `[[latency:MS]]` makes progress visible,
    `[[fail:503:1:KEY]]` fails the first call for each new topic (the step then retries), and
    `[[tool:NAME {...}]]` makes the agent call a tool.
    """
    topic = {"type": "string", "required": True, "default": "sourdough bread", "description": "What to write about"}

    def step(step_id: str, order: int, prompt: str, **extra: Any) -> dict[str, Any]:
        return {"step_id": step_id, "order": order, "agent_id": agent_id, "prompt_template": prompt, **extra}

    chain: dict[str, Any] = {
        "template_id": "sample-three-step-chain",
        "name": "Three-step chain",
        "description": "Outline, draft and polish a short article: each step reads the previous one's output.",
        "tags": ["sample", "writing"],
        "template_definition": {"kind": "chain"},
        "inputs": {
            "topic": topic,
            "audience": {"type": "string", "required": False, "default": "home cooks", "description": "Readers"},
        },
        "outputs": {"polish": {"type": "string"}},
        "steps": [
            step("outline", 1, "[[latency:1200]] Outline an article about {input.topic} for {input.audience}."),
            step("draft", 2, "[[latency:1200]] Draft the article from this outline: {steps.outline.output}"),
            step("polish", 3, "[[latency:1200]] Polish the draft: {previous_output}"),
        ],
        "execution_config": {"mode": "sequential", "max_retries": 1, "retry_delay": 1, "auto_learning": True},
    }
    fanout: dict[str, Any] = {
        "template_id": "sample-parallel-fanout",
        "name": "Parallel fan-out with retry",
        "description": (
            "Three researchers work at once; the technique step fails once for each new topic and is retried "
            "with backoff; a final step merges the three."
        ),
        "tags": ["sample", "research"],
        "template_definition": {"kind": "fan-out"},
        "inputs": {"topic": topic},
        "outputs": {"merge": {"type": "string"}},
        "steps": [
            step(
                "ingredients",
                1,
                '[[latency:900]] [[tool:text_stats {"text": "flour water salt levain"}]] '
                "List the ingredients of {input.topic}.",
            ),
            step(
                "technique",
                1,
                "[[latency:900]] [[fail:503:1:sample-fanout-{input.topic}]] Explain the technique of {input.topic}.",
                error_handling="retry",
                max_retries=3,
                retry_delay=1,
            ),
            step("history", 1, "[[latency:900]] Tell the history of {input.topic}."),
            step(
                "merge",
                2,
                "Merge into one page: {steps.ingredients.output} | {steps.technique.output} | {steps.history.output}",
                depends_on=["ingredients", "technique", "history"],
            ),
        ],
        "execution_config": {
            "mode": "parallel",
            "parallel_limit": 3,
            "max_retries": 3,
            "retry_delay": 1,
            "max_retry_delay": 10,
            "auto_learning": True,
        },
    }
    dag: dict[str, Any] = {
        "template_id": "sample-menu-dag",
        "name": "Menu planner (DAG)",
        "description": (
            "A brief feeds a starter and a main course; the dessert depends on the main; the menu waits for "
            "the starter and the dessert and prices itself with the calculator tool."
        ),
        "tags": ["sample", "planning"],
        "template_definition": {"kind": "dag"},
        "inputs": {
            "guests": {"type": "integer", "required": False, "default": 6, "description": "How many people"},
            "season": {"type": "string", "required": False, "default": "autumn", "description": "Season"},
        },
        "outputs": {"menu": {"type": "string"}},
        "steps": [
            step("brief", 1, "[[latency:700]] Write a brief for an {input.season} dinner for {input.guests} guests."),
            step("starter", 2, "[[latency:700]] Propose a starter for: {steps.brief.output}", depends_on=["brief"]),
            step("main", 2, "[[latency:700]] Propose a main course for: {steps.brief.output}", depends_on=["brief"]),
            step("dessert", 3, "[[latency:700]] Propose a dessert after: {steps.main.output}", depends_on=["main"]),
            step(
                "menu",
                4,
                '[[tool:calculator {"expression": "6 * 12.5"}]] Write the menu and its cost: '
                "{steps.starter.output} / {steps.main.output} / {steps.dessert.output}",
                depends_on=["starter", "dessert"],
            ),
        ],
        "execution_config": {"mode": "parallel", "max_retries": 1, "retry_delay": 1, "auto_learning": True},
    }
    recipes: list[dict[str, Any]] = [chain, fanout, dag]
    for recipe in recipes:
        recipe["is_system"] = True
        recipe["is_featured"] = True
    return recipes


@dataclass
class SeedResult:
    agent_id: str = ""
    agent_created: bool = False
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def catalog_database_url(server_url: str, database: str = CATALOG_DATABASE) -> str:
    """The catalog's database on the stack's PostgreSQL server, with the asyncpg driver."""
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


async def seed_catalog(database_url: str, workspace: str = SEED_WORKSPACE) -> SeedResult:
    """Creates the sample agent and the system recipes in `workspace` where they are missing."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from sous_catalog.adapters.repositories import AgentRepository, RecipeRepository
    from sous_catalog.commands import CreateRecipe, RegisterAgent
    from sous_catalog.handlers import CatalogHandlers, unit_of_works
    from sous_catalog.schemas import AgentCreate, RecipeCreate
    from sous_service.caller import Caller
    from sous_service.db import create_session_factory

    engine = create_async_engine(database_url, pool_size=1, max_overflow=0)
    sessions = create_session_factory(engine)
    uows = unit_of_works(sessions)
    handlers = CatalogHandlers.create()
    caller = Caller(workspace_id=workspace, user_id=SEED_USER, auth_type="system")
    result = SeedResult()
    try:
        async with sessions() as session, session.begin():
            known = await AgentRepository(session).by_names(workspace, [SAMPLE_AGENT_NAME])
            if SAMPLE_AGENT_NAME in known:
                result.agent_id = known[SAMPLE_AGENT_NAME]
            else:
                data = AgentCreate.model_validate(sample_agent()).model_dump(mode="json", by_alias=True)
                agent = await handlers.agents.register(RegisterAgent(agent=data), uows.joined(session, caller))
                result.agent_id = str(agent["id"])
                result.agent_created = True
        for recipe in system_recipes(result.agent_id):
            async with sessions() as session, session.begin():
                if await RecipeRepository(session).get(workspace, recipe["template_id"]) is not None:
                    result.existing.append(recipe["template_id"])
                    continue
                data = RecipeCreate.model_validate(recipe).model_dump(mode="json", exclude_none=True)
                await handlers.recipes.create(CreateRecipe(recipe=data), uows.joined(session, caller))
                result.created.append(recipe["template_id"])
    finally:
        await engine.dispose()
    return result


def seed_stack(stack: Stack, say: Callable[[str], None] = print) -> SeedResult | None:
    """Called by `Stack.start()` once every service is ready; a failure is reported, never fatal."""
    database = stack._database_names().get("catalog", CATALOG_DATABASE)
    try:
        result = run_async(seed_catalog(catalog_database_url(stack.database_url, database)))
    except Exception as exc:  # seeding is a convenience: the stack is usable without it
        say(f"seeding the default workspace failed: {type(exc).__name__}: {exc}")
        return None
    if result.created or result.agent_created:
        say(f"seeded workspace {SEED_WORKSPACE}: sample agent and system recipes {', '.join(result.created) or '-'}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sous_local.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="the PostgreSQL server URL (any database on it)")
    parser.add_argument("--workspace", default=SEED_WORKSPACE)
    args = parser.parse_args(argv)
    result = asyncio.run(seed_catalog(catalog_database_url(args.database_url), args.workspace))
    print(f"agent {result.agent_id} ({'created' if result.agent_created else 'existing'})")
    print(f"created: {', '.join(result.created) or '-'}; existing: {', '.join(result.existing) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
