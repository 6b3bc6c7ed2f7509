"""Cron schedules: each due run of a cron recipe starts once, even with several executor instances.

Every instance ticks; a `schedule_runs(workspace, template, due_at)` row inserted in the same transaction
as the ExecutionRequested append decides which instance starts it (the others find the row taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy.dialects.postgresql import insert as pg_insert

from sous_events.envelope import Actor
from sous_events.ids import new_id
from sous_executor.adapters import repositories as repo
from sous_executor.adapters.tables import schedule_runs
from sous_executor.handlers import ExecutorService
from sous_service.errors import ApiError, InputInvalid

logger = logging.getLogger("sous.executor.scheduler")
CRON_ACTOR = Actor(user_id="scheduler", auth_type="system")
# A missed tick older than this is not caught up (the next one will run).
MAX_LATENESS = timedelta(minutes=10)


def last_due(expression: str, now: datetime, timezone: str | None = None) -> datetime | None:
    """The latest scheduled time <= now, in UTC; None when the expression is invalid."""
    try:
        zone = ZoneInfo(timezone) if timezone and timezone != "UTC" else UTC
        local_now = now.astimezone(zone)
        itr = croniter(expression, local_now + timedelta(microseconds=1))
        previous: datetime = itr.get_prev(datetime)
    except Exception:
        return None
    return previous.astimezone(UTC)


class CronScheduler:
    def __init__(self, service: ExecutorService, interval_s: float) -> None:
        self.service = service
        self.interval_s = interval_s
        self.started: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def tick(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        started: list[str] = []
        async with self.service.sessions() as session:
            recipes = await repo.cron_recipes(session)
        for workspace_id, recipe, replicated_at in recipes:
            schedule = recipe.get("schedule_config") or {}
            expression = str(schedule.get("cron_expression") or "")
            due = last_due(expression, now, schedule.get("timezone"))
            if due is None or due < replicated_at - timedelta(seconds=1) or now - due > MAX_LATENESS:
                continue
            execution_id = await self._start_once(workspace_id, recipe, due)
            if execution_id:
                started.append(execution_id)
        self.started.extend(started)
        return started

    async def _start_once(self, workspace_id: str, recipe: dict[str, Any], due: datetime) -> str | None:
        agents = await self.service.load_agents(workspace_id, recipe)
        try:
            async with self.service.sessions() as session, session.begin():
                execution_id = new_id()
                taken = await session.execute(
                    pg_insert(schedule_runs)
                    .values(
                        workspace_id=workspace_id,
                        template_id=str(recipe["template_id"]),
                        due_at=due,
                        execution_id=execution_id,
                    )
                    .on_conflict_do_nothing()
                    .returning(schedule_runs.c.execution_id)
                )
                if taken.first() is None:
                    return None
                await self.service.start_in(
                    session,
                    workspace_id,
                    recipe,
                    agents,
                    {},
                    triggered_by="cron",
                    actor=CRON_ACTOR,
                    execution_id=execution_id,
                )
                return execution_id
        except (ApiError, InputInvalid) as exc:
            logger.warning("cron run of %s/%s at %s not started: %s", workspace_id, recipe.get("template_id"), due, exc)
            return None

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("cron tick failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="executor-cron")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
