"""Stage 4 of a workflow run: its subtasks run as one execution on this service's step engine."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sous_events.events.workflows import WorkflowStageStarted
from sous_events.ids import new_id
from sous_executor.commands import StartExecution
from sous_executor.workflows import repository as repo
from sous_executor.workflows.context import generated_recipe
from sous_executor.workflows.errors import RunLeaseLost
from sous_executor.workflows.model import StageState
from sous_executor.workflows.stage_work import MAX_OUTPUT_IN_EVENT, StageError, StageWork
from sous_executor.workflows.stages import CONTEXT, EXECUTION, SELECTION
from sous_service.caller import Caller
from sous_service.domain_errors import Conflict, DomainError, InputInvalid, RateLimited
from sous_service.internal_context import InternalContext
from sous_service.unit_of_work import UnitOfWork


class ExecutionStage(StageWork):
    async def _agent_execution(self, stage: StageState) -> dict[str, Any]:
        if stage.status == "pending":
            await self._start_execution(stage)
        execution_id = self.run.execution_id
        assert execution_id is not None
        asked = False
        while True:
            async with self.runner.sessions() as session:
                row = await repo.execution_row(session, execution_id)
            if row is not None and row.status in ("completed", "failed", "cancelled"):
                break
            if not asked and await self._cancel_requested():
                # The engine cancels the subtasks; the stage ends when the execution does.
                asked = True
                await self._cancel_execution(execution_id)
            await asyncio.sleep(self.runner.timings.poll_s)
        subtasks = [
            {
                "id": r.get("step_id"),
                "status": r.get("status"),
                "attempt": r.get("attempt"),
                "agent_id": r.get("agent_id"),
                "agent_name": r.get("agent_name"),
                "output": str(r.get("output") or "")[:MAX_OUTPUT_IN_EVENT],
                "error": r.get("error"),
                "duration_ms": r.get("duration_ms"),
                "tokens": (r.get("tokens_used") or {}).get("total", 0),
            }
            for r in row.step_results
        ]
        if row.status != "completed":
            code = "cancelled" if row.status == "cancelled" else "execution_failed"
            raise StageError(
                f"the subtasks' execution {execution_id} {row.status}: {row.error_message or 'no detail'}",
                code,
                {"execution_id": execution_id, "subtasks": subtasks},
            )
        return {
            "execution_id": execution_id,
            "status": row.status,
            "subtasks": subtasks,
            "usage": {"tokens": int(row.total_tokens), "cost_usd": float(row.total_cost_usd)},
            "duration_ms": float(row.total_duration_ms),
        }

    async def _cancel_execution(self, execution_id: str) -> None:
        actor = self.run.actor
        ctx = InternalContext(
            workspace_id=self.run.workspace_id,
            user_id=actor.user_id if actor else "system",
            auth_type=actor.auth_type if actor else "system",
        )
        recipe_id = str(self.run.stage(EXECUTION).detail.get("recipe_id") or "")
        with contextlib.suppress(Conflict):  # finished meanwhile: the stage records how
            await self.runner.service.cancel(ctx, recipe_id, execution_id, self.run.cancel_reason or "cancelled")

    async def _start_execution(self, stage: StageState) -> None:
        recipe = generated_recipe(
            workflow={**self.run.workflow, "id": self.run.workflow_id},
            plan=self._plan(),
            assignments=list(self.run.stage(SELECTION).output.get("assignments") or []),
            contexts=list(self.run.stage(CONTEXT).output.get("contexts") or []),
        )
        service = self.runner.service
        agents = await service.load_agents(self.run.workspace_id, recipe)
        execution_id = new_id()
        actor = self.run.actor
        assert actor is not None

        command = StartExecution(
            workspace_id=self.run.workspace_id,
            recipe=recipe,
            agents=agents,
            input_data={},
            triggered_by="workflow",
            execution_id=execution_id,
        )
        caller = Caller(workspace_id=self.run.workspace_id, user_id=actor.user_id, auth_type=actor.auth_type)
        # The request joins the stage's transaction; its claim is settled by how that transaction ends.
        requests: list[UnitOfWork] = []

        async def request_execution(session: AsyncSession) -> None:
            for earlier in requests:  # called again: the transaction of the earlier call rolled back
                earlier.rolled_back()
            requests.append(service.uows.joined(session, caller))
            await service.request_execution(command, requests[-1])

        started = WorkflowStageStarted(
            run_id=self.run_id,
            stage=stage.stage,
            name=stage.name,
            detail={"execution_id": execution_id, "recipe_id": recipe["template_id"], "recipe": recipe},
        )
        while True:
            committed = False
            try:
                await self._emit(started, extra=request_execution)
                committed = True
                return
            except InputInvalid as exc:
                raise StageError(f"the generated recipe is invalid: {exc}", "invalid_recipe") from exc
            except RateLimited:
                # The workspace runs as many executions as it may: wait for a slot, the stage stays pending.
                await asyncio.sleep(self.runner.timings.busy_retry_s)
            except DomainError as exc:
                raise StageError(exc.detail, exc.code) from exc
            except RunLeaseLost:
                raise
            finally:
                for index, request in enumerate(requests, start=1):
                    request.committed() if committed and index == len(requests) else request.rolled_back()
                requests.clear()
