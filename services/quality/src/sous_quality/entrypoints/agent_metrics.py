"""The agents' metrics published once per window: each agent's staged attempts in one AgentMetricsUpdated.

Every instance runs it; an agent's staged attempts are taken under its lock, so an attempt is published once
whichever instance takes it, and a crash between two ticks leaves the attempts staged for the next one.
"""

from __future__ import annotations

import logging

from sous_quality import handlers
from sous_quality.adapters import repository
from sous_quality.commands import PublishAgentMetrics
from sous_service.caller import Caller
from sous_service.periodic import Periodic
from sous_service.unit_of_work import UnitOfWorks

logger = logging.getLogger("sous.quality.agent_metrics")


class AgentMetricsPublisher(Periodic):
    name = "agent-metrics"
    what = "publishing the agents' metrics"

    def __init__(self, uows: UnitOfWorks, window_s: float) -> None:
        super().__init__(window_s, logger)
        self.uows = uows

    async def tick(self) -> int:
        """Publish every agent with staged attempts; how many were published."""
        async with self.uows.sessions() as session:
            staged = await repository.agents_with_staged_attempts(session)
        published = 0
        for agent_id, workspace_id in staged:
            caller = Caller(workspace_id=workspace_id, user_id="system", auth_type="system")
            command = PublishAgentMetrics(agent_id=agent_id)
            try:
                published += bool(await self.uows.run(handlers.publish_agent_metrics, command, caller))
            except Exception as exc:
                # One agent that cannot be published (its attempts stay staged) must not hold the others back.
                logger.warning("agent %s: metrics not published this window: %s", agent_id, exc)
        return published
