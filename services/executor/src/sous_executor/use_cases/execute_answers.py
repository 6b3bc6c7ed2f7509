"""What an execute request is answered: what it started, or what an earlier request with its Idempotency-Key
started (a recipe's execution, a workflow's run)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_executor.adapters import repositories as repo
from sous_executor.adapters.execute_keys import request_digest, take_key
from sous_executor.commands import StartExecution
from sous_service.domain_errors import InputInvalid

REPLAYED_MESSAGE = "{} was already started with this Idempotency-Key"


def accepted(execution_id: str, recipe: dict[str, Any], status: str, total_steps: int, message: str) -> dict[str, Any]:
    return {
        "recipe_execution_id": execution_id,
        "execution_id": execution_id,
        "recipe_id": str(recipe["template_id"]),
        "status": status,
        "total_steps": total_steps,
        "message": message,
        "replayed": False,
    }


async def started_earlier(
    session: AsyncSession,
    workspace_id: str,
    key: str,
    target: str,
    input_data: dict[str, Any] | None,
    started_id: str,
    ttl_s: float,
) -> str | None:
    """What an earlier request with this key started; None when this request takes the key (as `started_id`).

    The same key with another target or other inputs is the client's mistake, never a repeat: refused (422).
    """
    digest = request_digest(target, input_data)
    held = await take_key(session, workspace_id, key, digest, started_id, ttl_s)
    if held is None:
        return None
    if held.request_sha256 != digest:
        raise InputInvalid.single(
            "Idempotency-Key",
            "already used for a different request (another recipe or workflow, or other input_data): send a new key",
            "idempotency_key_reused",
        )
    return held.started_id


async def started_under_key(
    session: AsyncSession, command: StartExecution, key: str, execution_id: str, ttl_s: float
) -> dict[str, Any] | None:
    """The answer for the execution an earlier request with this key started; None when this request takes it."""
    target = f"recipe:{command.recipe['template_id']}"
    earlier = await started_earlier(session, command.workspace_id, key, target, command.input_data, execution_id, ttl_s)
    if earlier is None:
        return None
    row = await repo.get_execution_row(session, command.workspace_id, earlier)
    status, total = (row.status, row.total_steps) if row is not None else ("pending", 0)
    message = REPLAYED_MESSAGE.format(f"Execution {earlier}")
    return {**accepted(earlier, command.recipe, status, total, message), "replayed": True}
