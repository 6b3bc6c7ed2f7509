"""Cron schedules: each due run of a cron recipe starts once, even with several executor instances.

Every instance ticks; the schedule slot `(workspace, template, due_at)` taken in the same transaction as
the ExecutionRequested append decides which instance starts it (the others find the slot taken).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from sous_executor.commands import StartScheduledRun
from sous_executor.handlers import ExecutorService
from sous_service.caller import Caller
from sous_service.domain_errors import DomainError
from sous_service.periodic import Periodic

logger = logging.getLogger("sous.executor.scheduler")
# Cron runs act for the platform, as this user.
CRON_USER = "scheduler"
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


class CronScheduler(Periodic):
    name = "executor-cron"
    what = "cron tick"

    def __init__(self, service: ExecutorService, interval_s: float) -> None:
        super().__init__(interval_s, logger)
        self.service = service
        self.started: list[str] = []

    async def tick(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        started: list[str] = []
        for workspace_id, recipe, replicated_at in await self.service.cron_recipes():
            schedule = recipe.get("schedule_config") or {}
            expression = str(schedule.get("cron_expression") or "")
            due = last_due(expression, now, schedule.get("timezone"))
            if due is None or due < replicated_at - timedelta(seconds=1) or now - due > MAX_LATENESS:
                continue
            command = StartScheduledRun(workspace_id=workspace_id, recipe=recipe, due_at=due)
            caller = Caller(workspace_id=workspace_id, user_id=CRON_USER, auth_type="system")
            try:
                execution_id = await self.service.start_scheduled(command, caller)
            except DomainError as exc:  # a refusal (limits, an invalid recipe): the next due time may run
                logger.warning(
                    "cron run of %s/%s at %s not started: %s", workspace_id, recipe.get("template_id"), due, exc
                )
                continue
            if execution_id:
                started.append(execution_id)
        self.started.extend(started)
        return started
