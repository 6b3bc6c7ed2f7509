"""The stage machine of one workflow run (see runner.py for leases and persistence).

What each stage does lives in stage_work.py (and execution_stage.py for stage 4); here the stages run in
order, each once, and their outcomes, a cancel or a failure are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sous_events.events.workflows import (
    WorkflowRunFinished,
    WorkflowStageCompleted,
    WorkflowStageFailed,
    WorkflowStageStarted,
)
from sous_executor.workflows import repository as repo
from sous_executor.workflows.execution_stage import ExecutionStage
from sous_executor.workflows.model import StageState
from sous_executor.workflows.stage_work import StageError, utcnow
from sous_executor.workflows.stages import (
    AGGREGATION,
    CONTEXT,
    DECOMPOSITION,
    EXECUTION,
    LEARNING,
    MEMORY,
    QUALITY,
    RESPONSE,
    SELECTION,
)


class RunDriver(ExecutionStage):
    """Runs the stages in order, each once, recording each outcome; cancels and failures end the run."""

    async def drive(self) -> None:
        self.run = await self.runner.load(self.run_id)
        if not self.run.run_id or self.run.finished:
            async with self.runner.sessions() as session, session.begin():
                await repo.finish_lease(session, self.run_id)
            return
        current = asyncio.current_task()
        monitor = asyncio.create_task(self._heartbeats(current), name=f"workflow-heartbeat-{self.run_id}")
        try:
            await self._stages()
        finally:
            monitor.cancel()
            with contextlib.suppress(BaseException):
                await monitor

    async def _heartbeats(self, driver: asyncio.Task[Any] | None) -> None:
        # Never slower than a third of the lease, whatever the heartbeat setting: a late beat loses the run.
        interval = min(self.runner.settings.heartbeat_interval_s, self.runner.ttl_s / 3)
        while True:
            await asyncio.sleep(interval)
            if not await self.runner.heartbeat(self.run_id):
                if driver is not None:
                    driver.cancel()
                return

    async def _stages(self) -> None:
        while not self.run.finished:
            stage = self.run.next_stage()
            if stage is None:
                return
            if stage.status == "failed":
                # Died between recording the failure and finishing the run.
                await self._finish_failed(stage)
                return
            if await self._cancel_requested():
                await self._cancel(stage)
                return
            try:
                if stage.stage == EXECUTION:
                    output = await self._agent_execution(stage)
                else:
                    if stage.status == "pending":
                        await self._emit(WorkflowStageStarted(run_id=self.run_id, stage=stage.stage, name=stage.name))
                    output = await self._run_stage(self.run.stage(stage.stage))
            except StageError as exc:
                await self._emit(
                    WorkflowStageFailed(
                        run_id=self.run_id,
                        stage=stage.stage,
                        name=stage.name,
                        error=str(exc),
                        code=exc.code,
                        detail=exc.detail,
                    )
                )
                await self._finish_failed(self.run.stage(stage.stage))
                return
            started = self.run.stage(stage.stage).started_at or utcnow()
            completed = WorkflowStageCompleted(
                run_id=self.run_id,
                stage=stage.stage,
                name=stage.name,
                output=output,
                duration_ms=round((utcnow() - started).total_seconds() * 1000, 3),
            )
            if stage.stage == RESPONSE:
                finished = self._finished("completed", output.get("final_answer"), usage=output.get("usage"))
                await self._emit(completed, finished, finish=True)
            else:
                await self._emit(completed)

    async def _cancel(self, stage: StageState) -> None:
        reason = self.run.cancel_reason or "cancelled by request"
        events: list[Any] = []
        if stage.status == "running":
            events.append(
                WorkflowStageFailed(
                    run_id=self.run_id, stage=stage.stage, name=stage.name, error=reason, code="cancelled"
                )
            )
        events.append(
            self._finished("cancelled", None, f"cancelled before stage {stage.stage} ({stage.name}) ended: {reason}")
        )
        await self._emit(*events, finish=True)

    async def _finish_failed(self, stage: StageState) -> None:
        status = "cancelled" if stage.code == "cancelled" else "failed"
        error = f"stage {stage.stage} ({stage.name}) failed: {stage.error}"
        await self._emit(self._finished(status, None, error), finish=True)

    def _finished(
        self, status: str, answer: str | None, error: str | None = None, usage: dict[str, Any] | None = None
    ) -> WorkflowRunFinished:
        # The last stage's usage is passed in: it completes in the same append as the finish.
        usages = [stage.output.get("usage") or {} for stage in self.run.stages] + [usage or {}]
        tokens = sum(int(u.get("tokens") or 0) for u in usages)
        cost = sum(float(u.get("cost_usd") or 0.0) for u in usages)
        began = self.run.created_at or utcnow()
        return WorkflowRunFinished(
            run_id=self.run_id,
            workflow_id=self.run.workflow_id,
            status=status,
            final_answer=answer,
            error=error,
            totals={
                "tokens": tokens,
                "cost_usd": round(cost, 8),
                "duration_ms": round((utcnow() - began).total_seconds() * 1000, 3),
                "subtasks": len((self.run.stage(DECOMPOSITION).output.get("plan") or {}).get("subtasks") or []),
            },
        )

    async def _run_stage(self, stage: StageState) -> dict[str, Any]:
        handlers = {
            DECOMPOSITION: self._decomposition,
            SELECTION: self._selection,
            CONTEXT: self._context,
            AGGREGATION: self._aggregation,
            LEARNING: self._learning,
            QUALITY: self._quality,
            MEMORY: self._memory,
            RESPONSE: self._response,
        }
        return await handlers[stage.stage](stage)
