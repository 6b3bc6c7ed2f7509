"""Recipe version routes: propose a version, list and read versions, promote one through what-if replays."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from sous_catalog.adapters import versions
from sous_catalog.adapters.repositories import RecipeRepository
from sous_catalog.commands import PromoteRecipeVersion, ProposeRecipeVersion
from sous_catalog.entrypoints.dependencies import ReadCaller, ReadSession, Services, WriteCaller
from sous_catalog.schemas import RecipeUpdate
from sous_service.domain_errors import Conflict, NotFound
from sous_service.errors import ApiError, responses
from sous_service.scopes import EXECUTIONS_RUN
from sous_service.web import Context

versions_router = APIRouter(prefix="/api/workflow-recipes/{template_id}/versions", tags=["recipes"])

Revision = Annotated[int, Path(ge=1, le=1_000_000_000, description="The version's revision")]


@versions_router.post(
    "",
    status_code=201,
    summary="Propose a version",
    description=(
        "Records the given changes as a new version of the recipe (RecipeVersionProposed) without making it "
        "current: the recipe keeps running as it is; its revision moves to the version's. Validated like a PUT. "
        "Promote it with `POST …/versions/{revision}/promote`. 409 `version_unchanged` when it changes nothing."
    ),
    responses=responses(409),
)
async def propose(
    caller: WriteCaller, svc: Services, template_id: str, body: Annotated[RecipeUpdate, Body()]
) -> dict[str, Any]:
    command = ProposeRecipeVersion(template_id=template_id, changes=body.model_dump(mode="json", exclude_unset=True))
    version = await svc.uows.run(svc.handlers.versions.propose, command, caller)
    return {"message": f"Version {version['revision']} proposed", "version": version}


@versions_router.get(
    "",
    summary="The recipe's versions",
    description="Proposed versions, newest first, with their status (proposed, replaying, promoted, refused) and report.",
    responses=responses(),
)
async def list_versions(caller: ReadCaller, session: ReadSession, template_id: str) -> dict[str, Any]:
    row = await RecipeRepository(session).get(caller.workspace_id, template_id)
    if row is None:
        raise NotFound("recipe", template_id)
    items = [versions.version_view(v) for v in await versions.list_versions(session, row.id)]
    return {"template_id": template_id, "items": items, "total": len(items)}


@versions_router.get(
    "/{revision}",
    summary="One version",
    description="A proposed version: its snapshot, status, the replays of its promotion and the report kept on it.",
    responses=responses(),
)
async def get_version(caller: ReadCaller, session: ReadSession, template_id: str, revision: Revision) -> dict[str, Any]:
    row = await RecipeRepository(session).get(caller.workspace_id, template_id)
    found = await versions.get_version(session, row.id, revision) if row is not None else None
    if found is None:
        raise NotFound("version", str(revision), detail=f"recipe '{template_id}' has no proposed version {revision}")
    return versions.version_view(found)


@versions_router.post(
    "/{revision}/promote",
    summary="Promote a version to current",
    description=(
        "Replays the recipe's last K finished executions with this version (the executor's what-if replay: "
        "only changed steps and their descendants run again) and makes the version current only when the "
        "replays are not worse on quality and stay within the cost ceiling (docs/marketplace.md). 200: promoted "
        "(RecipeVersionPromoted, then RecipeUpdated), with the report. 409 `promotion_refused`: the reasons and "
        "the replay report (kept on the version). 202: the replays are still running; ask again to pick them "
        "up. 409 `version_stale` when the recipe changed since the version was proposed. Needs "
        "`executions:run` besides `recipes:write`: the replays run as the caller. 502 `replay_unavailable` "
        "when the executor cannot start or report the replays (nothing is decided)."
    ),
    responses={**responses(409, 502), 202: {"description": "The replays are still running: ask again"}},
)
async def promote(
    caller: WriteCaller, ctx: Context, svc: Services, template_id: str, revision: Revision, response: Response
) -> dict[str, Any]:
    if not ctx.has_scope(EXECUTIONS_RUN):
        raise ApiError(
            403, "insufficient_scope", f"promoting replays executions: it needs the '{EXECUTIONS_RUN}' scope"
        )
    result = await svc.promotions.promote(PromoteRecipeVersion(template_id=template_id, revision=revision), ctx)
    report = result.report.model_dump(mode="json") if result.report is not None else None
    if result.status == "replaying":
        response.status_code = 202
        return {"message": "The replays are still running: ask again", "status": "replaying", "version": result.version}
    if result.status == "refused":
        reasons = result.report.reasons if result.report is not None else []
        raise Conflict(
            f"version {revision} of recipe '{template_id}' was not promoted: {'; '.join(reasons)}",
            code="promotion_refused",
            reasons=reasons,
            report=report,
            version=result.version,
        )
    return {
        "message": f"Version {revision} is current",
        "status": "promoted",
        "version": result.version,
        "recipe": result.recipe,
        "report": report,
    }
