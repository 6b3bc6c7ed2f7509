"""HTTP entry points at their public paths; each translates a request into a handler call.

Every route depends on the gateway's signed context (401 without it) and works inside the caller's
workspace only: another workspace's recipe or agent is 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_catalog.adapters import agent_numbers
from sous_catalog.adapters.repositories import AgentRepository, RecipeQuery, RecipeRepository, SortKey, recipe_public
from sous_catalog.domain.agent import enrichment
from sous_catalog.domain.validation import step_agent_ids
from sous_catalog.handlers import Caller, CatalogHandlers
from sous_catalog.schemas import (
    AgentCreate,
    AgentDeleted,
    AgentList,
    AgentPublic,
    AgentUpdate,
    CategoryList,
    Dashboard,
    FeaturedList,
    RecipeCreate,
    RecipeDeletedOut,
    RecipeEnvelope,
    RecipeHistory,
    RecipeList,
    RecipePublic,
    RecipeUpdate,
    RecipeUseOut,
)
from sous_service.errors import ApiError, InputInvalid, not_found, responses
from sous_service.internal_context import InternalContext
from sous_service.web import Context

READ_SCOPE = "recipes:read"
WRITE_SCOPE = "recipes:write"
MAX_SKIP = 1_000_000


@dataclass
class CatalogServices:
    sessions: async_sessionmaker[AsyncSession]
    handlers: CatalogHandlers
    update_retries: int = 3


def services(request: Request) -> CatalogServices:
    found: CatalogServices = request.app.state.catalog
    return found


Services = Annotated[CatalogServices, Depends(services)]


def caller_of(ctx: InternalContext, scope: str) -> Caller:
    if not ctx.has_scope(scope):
        raise ApiError(403, "insufficient_scope", f"this request needs the '{scope}' scope")
    return Caller(
        workspace_id=ctx.workspace_id,
        user_id=ctx.user_id,
        auth_type=ctx.auth_type,
        correlation_id=ctx.request_id,
    )


def read_caller(ctx: Context) -> Caller:
    return caller_of(ctx, READ_SCOPE)


def write_caller(ctx: Context) -> Caller:
    return caller_of(ctx, WRITE_SCOPE)


# Scope checks are dependencies so they answer 403 before the body is validated.
ReadCaller = Annotated[Caller, Depends(read_caller)]
WriteCaller = Annotated[Caller, Depends(write_caller)]


async def read_session(svc: Services) -> AsyncIterator[AsyncSession]:
    async with svc.sessions() as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(read_session)]


def parse_if_match(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit() or len(text) > 9:
        raise InputInvalid.single("If-Match", "must be the recipe's revision number", "if_match")
    return int(text)


# ---------------------------------------------------------------- agents

agents_router = APIRouter(prefix="/api/agents", tags=["agents"])


@agents_router.get(
    "",
    summary="List agents",
    description="Agents of the caller's workspace, newest first; `search` matches name and description (case-insensitive).",
    response_model=AgentList,
    responses=responses(),
)
async def list_agents(
    caller: ReadCaller,
    session: ReadSession,
    search: Annotated[str | None, Query(max_length=200)] = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    items, total = await AgentRepository(session).page(caller.workspace_id, search=search, skip=skip, limit=limit)
    return {"items": items, "total": total, "skip": skip, "limit": limit}


@agents_router.post(
    "",
    status_code=201,
    summary="Register an agent",
    description="Creates an agent (AgentRegistered). A raw `api_key` is refused: reference a workspace secret with `model_config.api_key_secret` (or an environment variable the operator granted to the workspace with `api_key_env`).",
    response_model=AgentPublic,
    responses=responses(),
)
async def create_agent(caller: WriteCaller, svc: Services, body: AgentCreate) -> dict[str, Any]:
    async with svc.sessions.begin() as session:
        return await svc.handlers.register_agent(session, caller, body.model_dump(mode="json", by_alias=True))


@agents_router.get(
    "/{agent_id}",
    summary="Get an agent",
    description=(
        "One agent of the caller's workspace, with the metrics the quality service reports. `agent_id` is the "
        "agent's id or its number in the workspace."
    ),
    response_model=AgentPublic,
    responses=responses(),
)
async def get_agent(caller: ReadCaller, session: ReadSession, agent_id: str) -> dict[str, Any]:
    agent_id = await agent_numbers.resolve(session, caller.workspace_id, agent_id)
    found = await AgentRepository(session).by_ids(caller.workspace_id, [agent_id])
    if agent_id not in found:
        raise not_found("agent", agent_id)
    return found[agent_id]


@agents_router.put(
    "/{agent_id}",
    summary="Update an agent",
    description="Changes the given fields (AgentUpdated with the changed fields). `agent_id` may be its number.",
    response_model=AgentPublic,
    responses=responses(409),
)
async def update_agent(caller: WriteCaller, svc: Services, agent_id: str, body: AgentUpdate) -> dict[str, Any]:
    async with svc.sessions.begin() as session:
        agent_id = await agent_numbers.resolve(session, caller.workspace_id, agent_id)
        return await svc.handlers.update_agent(
            session, caller, agent_id, body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        )


@agents_router.delete(
    "/{agent_id}",
    summary="Delete an agent",
    description=(
        "Removes the agent (AgentRemoved); 409 naming the recipes while recipes of the workspace use it. "
        "`agent_id` may be its number; its number is never given to another agent."
    ),
    response_model=AgentDeleted,
    responses=responses(409),
)
async def delete_agent(caller: WriteCaller, svc: Services, agent_id: str) -> dict[str, Any]:
    async with svc.sessions.begin() as session:
        agent_id = await agent_numbers.resolve(session, caller.workspace_id, agent_id)
        await svc.handlers.remove_agent(session, caller, agent_id)
    return {"message": "Agent deleted", "agent_id": agent_id}


# ---------------------------------------------------------------- recipes

recipes_router = APIRouter(prefix="/api/workflow-recipes", tags=["recipes"])


@recipes_router.get(
    "",
    summary="List recipes",
    description=(
        "Recipes of the caller's workspace. Filters: is_public (default true), is_featured, search (name and "
        "description, case-insensitive). Sort: popularity, created_at, use_count, average_rating (descending) or "
        "name (ascending)."
    ),
    response_model=RecipeList,
    responses=responses(),
)
async def list_recipes(
    caller: ReadCaller,
    session: ReadSession,
    is_featured: bool | None = None,
    is_public: bool | None = True,
    search: Annotated[str | None, Query(max_length=200)] = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    sort_by: SortKey = "popularity",
) -> dict[str, Any]:
    query = RecipeQuery(
        workspace_id=caller.workspace_id,
        is_public=is_public,
        is_featured=is_featured,
        search=search,
        sort_by=sort_by,
        skip=skip,
        limit=limit,
    )
    items, total = await RecipeRepository(session).page(query)
    return {"items": items, "total": total, "skip": skip, "limit": limit}


@recipes_router.post(
    "",
    status_code=201,
    summary="Create a recipe",
    description=(
        "Validates steps (unique step_id, integer order, error_handling, depends_on known and acyclic, agents of "
        "this workspace), execution_config and schedule_config, then appends RecipeCreated. Duplicate template_id: 409."
    ),
    response_model=RecipeEnvelope,
    responses=responses(409),
)
async def create_recipe(caller: WriteCaller, svc: Services, body: RecipeCreate) -> dict[str, Any]:
    async with svc.sessions.begin() as session:
        recipe = await svc.handlers.create_recipe(session, caller, body.model_dump(mode="json", exclude_none=True))
    return {"message": "Recipe created", "recipe": recipe}


@recipes_router.get(
    "/categories/list",
    summary="Recipe categories",
    description="Categories of the workspace's recipes (a recipe's first tag, else General) with counts.",
    response_model=CategoryList,
    responses=responses(),
)
async def categories(caller: ReadCaller, session: ReadSession) -> dict[str, Any]:
    rows = await RecipeRepository(session).categories(caller.workspace_id)
    return {"categories": [{"name": name, "count": count} for name, count in rows]}


@recipes_router.get(
    "/featured/list",
    summary="Featured recipes",
    description="The workspace's featured recipes, most popular first.",
    response_model=FeaturedList,
    responses=responses(),
)
async def featured(
    caller: ReadCaller, session: ReadSession, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> dict[str, Any]:
    items, total = await RecipeRepository(session).featured(caller.workspace_id, limit)
    return {"items": items, "total": total}


@recipes_router.get(
    "/stats/dashboard",
    summary="Recipe dashboard",
    description="Totals, execution status breakdown (from executor events) and the top 10 recipes of this workspace.",
    response_model=Dashboard,
    responses=responses(),
)
async def dashboard(caller: ReadCaller, session: ReadSession) -> dict[str, Any]:
    return await RecipeRepository(session).dashboard(caller.workspace_id)


@recipes_router.get(
    "/{template_id}",
    summary="Get a recipe",
    description="One recipe; each step carries `agent` {id, name, model, provider, tool_count, status} or null.",
    response_model=RecipePublic,
    responses=responses(),
)
async def get_recipe(caller: ReadCaller, session: ReadSession, template_id: str, response: Response) -> dict[str, Any]:
    row = await RecipeRepository(session).get(caller.workspace_id, template_id)
    if row is None:
        raise not_found("recipe", template_id)
    recipe = recipe_public(row)
    agents = await AgentRepository(session).by_ids(caller.workspace_id, step_agent_ids(recipe["steps"]))
    recipe["steps"] = [{**step, "agent": enrichment(agents.get(step.get("agent_id")))} for step in recipe["steps"]]
    response.headers["ETag"] = f'"{recipe["revision"]}"'
    return recipe


@recipes_router.put(
    "/{template_id}",
    summary="Update a recipe",
    description=(
        "Changes the given fields and re-validates them (RecipeUpdated with the full snapshot and changed fields). "
        "System recipes: 403. `If-Match: <revision>`: 409 when the recipe moved on."
    ),
    response_model=RecipeEnvelope,
    responses=responses(409),
)
async def update_recipe(
    caller: WriteCaller,
    svc: Services,
    template_id: str,
    response: Response,
    body: Annotated[RecipeUpdate, Body()],
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> dict[str, Any]:
    expected = parse_if_match(if_match)
    changes = body.model_dump(mode="json", exclude_unset=True)
    attempts = 1 if expected is not None else max(1, svc.update_retries)
    for attempt in range(1, attempts + 1):
        try:
            async with svc.sessions.begin() as session:
                recipe = await svc.handlers.update_recipe(session, caller, template_id, changes, if_match=expected)
            break
        except ApiError as exc:
            if exc.code != "revision_conflict" or attempt == attempts:
                raise
    response.headers["ETag"] = f'"{recipe["revision"]}"'
    return {"message": "Recipe updated", "recipe": recipe}


@recipes_router.delete(
    "/{template_id}",
    summary="Delete a recipe",
    description="Appends RecipeDeleted. System recipes: 403.",
    response_model=RecipeDeletedOut,
    responses=responses(),
)
async def delete_recipe(caller: WriteCaller, svc: Services, template_id: str) -> dict[str, Any]:
    async with svc.sessions.begin() as session:
        await svc.handlers.delete_recipe(session, caller, template_id)
    return {"message": "Recipe deleted", "recipe_id": template_id}


@recipes_router.post(
    "/{template_id}/use",
    summary="Record a use",
    description="Counts one use of the recipe (use_count, last_used_at, popularity); a statistic, not a revision.",
    response_model=RecipeUseOut,
    responses=responses(),
)
async def use_recipe(caller: WriteCaller, svc: Services, template_id: str) -> dict[str, Any]:
    async with svc.sessions.begin() as session:
        recipe = await svc.handlers.use_recipe(session, caller, template_id)
    return {
        "message": "Recipe use recorded",
        "template_id": template_id,
        "use_count": recipe["use_count"],
        "last_used_at": recipe["last_used_at"],
    }


@recipes_router.get(
    "/{template_id}/history",
    summary="Recipe history",
    description="Every revision (event type, changed fields, actor, time); `?revision=N` adds the recipe as it was then.",
    response_model=RecipeHistory,
    responses=responses(),
)
async def history(
    caller: ReadCaller,
    svc: Services,
    session: ReadSession,
    template_id: str,
    revision: Annotated[int | None, Query(ge=1, le=1_000_000_000)] = None,
) -> dict[str, Any]:
    return await svc.handlers.history(session, caller, template_id, revision)


ROUTERS = (agents_router, recipes_router)
