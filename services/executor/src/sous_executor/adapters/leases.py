"""Execution leases: one owner at a time, extended by heartbeats, taken over when expired."""

from __future__ import annotations

from sqlalchemy import Float, bindparam, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_executor.adapters.tables import leases


class LeaseLost(Exception):
    """This runner no longer owns the execution; it must stop without writing."""


class Leases:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], owner: str, ttl_s: float) -> None:
        self.sessions = sessions
        self.owner = owner
        self.ttl_s = ttl_s

    def _expires(self) -> object:
        return text("now() + make_interval(secs => :ttl)").bindparams(bindparam("ttl", self.ttl_s, type_=Float))

    async def claim_new(self, session: AsyncSession, execution_id: str, workspace_id: str) -> bool:
        """The first claim of a requested execution: in the transaction that requests it (on the instance that
        accepts it) or in a runner consumer's inbox transaction; False when it is claimed already.

        The expiry counts from the statement (`clock_timestamp()`), not from the transaction's start, so a
        claimer may count the ttl from any moment before it sent the statement."""
        expires = text("clock_timestamp() + make_interval(secs => :ttl)").bindparams(
            bindparam("ttl", self.ttl_s, type_=Float)
        )
        result = await session.execute(
            pg_insert(leases)
            .values(
                execution_id=execution_id,
                workspace_id=workspace_id,
                owner=self.owner,
                expires_at=expires,
            )
            .on_conflict_do_nothing()
            .returning(leases.c.execution_id)
        )
        return result.first() is not None

    async def heartbeat(self, execution_id: str) -> bool:
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(leases)
                .where(leases.c.execution_id == execution_id, leases.c.owner == self.owner, ~leases.c.finished)
                .values(expires_at=self._expires(), heartbeat_at=text("now()"))
                .returning(leases.c.execution_id)
            )
            return result.first() is not None

    async def mark_finished(self, session: AsyncSession, execution_id: str) -> None:
        await session.execute(update(leases).where(leases.c.execution_id == execution_id).values(finished=True))

    async def claim_expired(self, limit: int = 20) -> list[str]:
        """Take over executions whose owner stopped heartbeating; only one instance wins each row."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                text(
                    """
                    UPDATE execution_leases SET owner = :owner, expires_at = now() + make_interval(secs => :ttl),
                           heartbeat_at = now(), claims = claims + 1
                    WHERE execution_id IN (
                        SELECT execution_id FROM execution_leases
                        WHERE NOT finished AND expires_at < now()
                        ORDER BY expires_at FOR UPDATE SKIP LOCKED LIMIT :limit)
                    RETURNING execution_id
                    """
                ).bindparams(bindparam("ttl", self.ttl_s, type_=Float), owner=self.owner, limit=limit)
            )
            return [row[0] for row in result.all()]

    async def claim_pending(self, limit: int, grace_s: float) -> list[str]:
        """Claim requested executions nobody claimed (every instance was full when they arrived)."""
        if limit <= 0:
            return []
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                text(
                    """
                    INSERT INTO execution_leases (execution_id, workspace_id, owner, expires_at)
                    SELECT e.execution_id, e.workspace_id, :owner, now() + make_interval(secs => :ttl)
                    FROM executions e
                    WHERE e.status = 'pending' AND e.created_at < now() - make_interval(secs => :grace)
                      AND NOT EXISTS (SELECT 1 FROM execution_leases l WHERE l.execution_id = e.execution_id)
                    ORDER BY e.created_at
                    LIMIT :limit
                    ON CONFLICT DO NOTHING
                    RETURNING execution_id
                    """
                ).bindparams(
                    bindparam("ttl", self.ttl_s, type_=Float),
                    bindparam("grace", grace_s, type_=Float),
                    owner=self.owner,
                    limit=limit,
                )
            )
            return [row[0] for row in result.all()]

    async def release(self, execution_id: str) -> None:
        """On a graceful stop: let another instance take over at once."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(leases)
                .where(leases.c.execution_id == execution_id, leases.c.owner == self.owner, ~leases.c.finished)
                .values(expires_at=text("now() - interval '1 second'"))
            )
