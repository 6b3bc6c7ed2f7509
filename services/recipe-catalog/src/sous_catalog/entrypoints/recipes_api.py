"""Recipe routes at their public paths: each builds a command and runs its handler in a unit of work;
reads go to the read models (and, for history, the recipe's event stream)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response

from sous_catalog.adapters.repositories import AgentRepository, RecipeQuery, RecipeRepository, SortKey, recipe_public
from sous_catalog.commands import CreateRecipe, DeleteRecipe, RecordRecipeUse, UpdateRecipe
from sous_catalog.domain.agent import enrichment
from sous_catalog.domain.validation import step_agent_ids
from sous_catalog.entrypoints.dependencies import (
    MAX_SKIP,
    ReadCaller,
    ReadSession,
    Services,
    WriteCaller,
    parse_if_match,
)
from sous_catalog.handlers.history import recipe_history
from sous_catalog.schemas import (
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
from sous_catalog.statistics_schemas import CategoryList, Dashboard
from sous_service.domain_errors import NotFound
from sous_service.errors import responses

recipes_router = APIRouter(prefix="/api/workflow-recipes", tags=["recipes"])


@recipes_router.get(
    "",
    summary="List recipes",
    description=(
        "Recipes of the caller's workspace. Filters: is_public (default true), is_featured, search (name and "
        "description, case-insensitive). Sort: popularity, created_at, use_count, average_rating (descending) or "
        "name (ascending, case-insensitive)."
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
    command = CreateRecipe(recipe=body.model_dump(mode="json", exclude_none=True))
    recipe = await svc.uows.run(svc.handlers.recipes.create, command, caller)
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
        raise NotFound("recipe", template_id)
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
    command = UpdateRecipe(
        template_id=template_id,
        changes=body.model_dump(mode="json", exclude_unset=True),
        if_match=parse_if_match(if_match),
    )
    recipe = await svc.uows.run(svc.handlers.recipes.update, command, caller)
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
    await svc.uows.run(svc.handlers.recipes.delete, DeleteRecipe(template_id=template_id), caller)
    return {"message": "Recipe deleted", "recipe_id": template_id}


@recipes_router.post(
    "/{template_id}/use",
    summary="Record a use",
    description="Counts one use of the recipe (use_count, last_used_at, popularity); a statistic, not a revision.",
    response_model=RecipeUseOut,
    responses=responses(),
)
async def use_recipe(caller: WriteCaller, svc: Services, template_id: str) -> dict[str, Any]:
    recipe = await svc.uows.run(svc.handlers.recipes.record_use, RecordRecipeUse(template_id=template_id), caller)
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
    return await recipe_history(session, svc.uows.store, caller.workspace_id, template_id, revision)
