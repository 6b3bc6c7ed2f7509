"""Agent numbers: a stable integer per agent and workspace, so an integer agent id resolves to an agent.

Numbers are handed out by a per-workspace counter (one row, incremented under its row lock), are never
reused after a removal, and travel in the agent's snapshot (its events), so a rebuild keeps them.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from sous_catalog.adapters.tables import agents

_NUMBER = re.compile(r"^[0-9]{1,9}$")


def as_number(reference: Any) -> int | None:
    """The agent number a reference names (an int or a string of digits), else None (an agent id)."""
    if isinstance(reference, bool):
        return None
    if isinstance(reference, int):
        return reference
    if isinstance(reference, str) and _NUMBER.match(reference):
        return int(reference)
    return None


async def next_number(session: AsyncSession, workspace_id: str) -> int:
    row = await session.execute(
        text(
            "INSERT INTO agent_numbers (workspace_id, last_number) VALUES (:ws, 1) "
            "ON CONFLICT (workspace_id) DO UPDATE SET last_number = agent_numbers.last_number + 1 "
            "RETURNING last_number"
        ),
        {"ws": workspace_id},
    )
    return int(row.scalar_one())


async def resolve(session: AsyncSession, workspace_id: str, reference: str) -> str:
    """The agent id a reference names in this workspace: a number is looked up, an id is kept as is."""
    number = as_number(reference)
    if number is None:
        return reference
    found = await session.execute(
        select(agents.c.id).where(agents.c.workspace_id == workspace_id, agents.c.number == number)
    )
    agent_id = found.scalar_one_or_none()
    return str(agent_id) if agent_id is not None else reference


async def resolve_steps(session: AsyncSession, workspace_id: str, steps: Any) -> None:
    """Replace each step's agent number by the agent's id, keeping the number as `agent_number` (the step
    is shown with the number it was given). Unknown numbers stay as they are and are refused later."""
    if not isinstance(steps, list):
        return
    for step in steps:
        if not isinstance(step, dict):
            continue
        # Derived here only: a copied step (an install) must not bring another workspace's number along.
        step.pop("agent_number", None)
        number = as_number(step.get("agent_id"))
        if number is None:
            continue
        agent_id = await resolve(session, workspace_id, str(number))
        step["agent_id"] = agent_id
        if agent_id != str(number):
            step["agent_number"] = number
