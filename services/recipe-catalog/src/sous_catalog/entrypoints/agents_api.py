"""Agent routes at their public paths: each builds a command and runs its handler in a unit of work."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from sous_catalog.adapters import agent_numbers
from sous_catalog.adapters.repositories import AgentRepository, AgentSortKey
from sous_catalog.commands import RegisterAgent, RemoveAgent, UpdateAgent
from sous_catalog.entrypoints.dependencies import MAX_SKIP, ReadCaller, ReadSession, Services, WriteCaller
from sous_catalog.schemas import AgentCreate, AgentDeleted, AgentList, AgentPublic, AgentUpdate
from sous_service.domain_errors import NotFound
from sous_service.errors import responses

agents_router = APIRouter(prefix="/api/agents", tags=["agents"])


@agents_router.get(
    "",
    summary="List agents",
    description=(
        "Agents of the caller's workspace, newest first (`sort_by=name`: by name, case-insensitive); `search` "
        "matches name and description (case-insensitive)."
    ),
    response_model=AgentList,
    responses=responses(),
)
async def list_agents(
    caller: ReadCaller,
    session: ReadSession,
    search: Annotated[str | None, Query(max_length=200)] = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    sort_by: AgentSortKey = "created_at",
) -> dict[str, Any]:
    items, total = await AgentRepository(session).page(
        caller.workspace_id, search=search, skip=skip, limit=limit, sort_by=sort_by
    )
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
    command = RegisterAgent(agent=body.model_dump(mode="json", by_alias=True))
    return await svc.uows.run(svc.handlers.agents.register, command, caller)


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
        raise NotFound("agent", agent_id)
    return found[agent_id]


@agents_router.put(
    "/{agent_id}",
    summary="Update an agent",
    description="Changes the given fields (AgentUpdated with the changed fields). `agent_id` may be its number.",
    response_model=AgentPublic,
    responses=responses(409),
)
async def update_agent(caller: WriteCaller, svc: Services, agent_id: str, body: AgentUpdate) -> dict[str, Any]:
    command = UpdateAgent(agent_id=agent_id, changes=body.model_dump(mode="json", by_alias=True, exclude_unset=True))
    return await svc.uows.run(svc.handlers.agents.update, command, caller)


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
    removed = await svc.uows.run(svc.handlers.agents.remove, RemoveAgent(agent_id=agent_id), caller)
    return {"message": "Agent deleted", "agent_id": removed}
