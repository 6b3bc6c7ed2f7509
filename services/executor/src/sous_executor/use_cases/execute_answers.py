"""What an execute request is answered: the execution it started, or the one its Idempotency-Key started."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_executor.adapters import repositories as repo
from sous_executor.adapters.execute_keys import request_digest, take_key
from sous_executor.commands import StartExecution
from sous_service.domain_errors import InputInvalid


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


async def started_under_key(
    session: AsyncSession, command: StartExecution, key: str, execution_id: str, ttl_s: float
) -> dict[str, Any] | None:
    """The answer for the execution an earlier request with this key started; None when this request takes it.

    The same key with another recipe or other inputs is the client's mistake, never a repeat: refused (422).
    """
    digest = request_digest(str(command.recipe["template_id"]), command.input_data)
    held = await take_key(session, command.workspace_id, key, digest, execution_id, ttl_s)
    if held is None:
        return None
    if held.request_sha256 != digest:
        raise InputInvalid.single(
            "Idempotency-Key",
            "already used for a different request (another recipe or other input_data): send a new key",
            "idempotency_key_reused",
        )
    row = await repo.get_execution_row(session, command.workspace_id, held.execution_id)
    status, total = (row.status, row.total_steps) if row is not None else ("pending", 0)
    message = f"Execution {held.execution_id} was already started with this Idempotency-Key"
    return {**accepted(held.execution_id, command.recipe, status, total, message), "replayed": True}
