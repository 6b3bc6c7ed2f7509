"""Statements written as SQL text for the consumer's hot paths, sent to the driver as they are.

A statement built with SQLAlchemy's expression language is built, keyed and looked up in the compiled cache
on every call, which cost more CPU than the database spent running it; each text here is fixed (or one of a
few, built once), so each connection prepares it once and a call only binds its parameters. They go to the
driver connection of the session's transaction (sous_events.driver): rows are the driver's records, read by
column name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events import driver, jsontext
from sous_events.driver import Record


async def execute(session: AsyncSession, sql: str, *parameters: Any) -> None:
    """Run `sql` ($1, $2, ... placeholders) in the session's transaction, for its effect."""
    await driver.execute(session, sql, *parameters)


async def first(session: AsyncSession, sql: str, *parameters: Any) -> Record | None:
    """The first row `sql` returns in the session's transaction, or None."""
    return await driver.fetchrow(session, sql, *parameters)


async def one(session: AsyncSession, sql: str, *parameters: Any) -> Record:
    """The row `sql` returns in the session's transaction (a statement that always returns one)."""
    row = await driver.fetchrow(session, sql, *parameters)
    if row is None:
        raise LookupError(f"no row from: {sql[:80]}")
    return row


async def rows(session: AsyncSession, sql: str, *parameters: Any) -> list[Record]:
    """Every row `sql` returns in the session's transaction."""
    return await driver.fetch(session, sql, *parameters)


def json_text(value: Any) -> str | None:
    """A JSONB parameter: its JSON text (None stays SQL NULL)."""
    return None if value is None else jsontext.dumps(value)
