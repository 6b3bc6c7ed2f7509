"""Statements written as SQL text for the consumer's hot paths, sent to the driver as they are.

A statement built with SQLAlchemy's expression language is built, keyed and looked up in the compiled cache
on every call, which cost more CPU than the database spent running it; each text here is fixed (or one of a
few, built once), so each connection prepares it once and a call only binds its parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import jsontext


async def run(session: AsyncSession, sql: str, *parameters: Any) -> CursorResult[Any]:
    """Run `sql` ($1, $2, ... placeholders) in the session's transaction."""
    connection = await session.connection()
    return await connection.exec_driver_sql(sql, parameters)


def json_text(value: Any) -> str | None:
    """A JSONB parameter: its JSON text (None stays SQL NULL)."""
    return None if value is None else jsontext.dumps(value)
