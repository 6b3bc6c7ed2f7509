"""Use cases: start, cancel and rerun executions; keep the catalog replicas. Reads live in adapters/views.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.envelope import Envelope, EventPayload
from sous_events.events.catalog import (
    AgentRegistered,
    AgentRemoved,
    AgentUpdated,
    RecipeCreated,
    RecipeDeleted,
    RecipeUpdated,
)
from sous_events.events.executor import ExecutionCancelRequested, ExecutionRequested, ExecutionStarted
from sous_events.ids import new_id
from sous_events.registry import make_event
from sous_events.store import EventStore
from sous_executor.adapters import repositories as repo
from sous_executor.adapters.catalog_client import CatalogClient
from sous_executor.adapters.execution_stream import AGGREGATE, PRODUCER, append_requested
from sous_executor.adapters.leases import Leases
from sous_executor.adapters.quality_scores import QualityScores
from sous_executor.adapters.views import ExecutionViews, owned_execution
from sous_executor.commands import CancelExecution, StartExecution, StartFromWebhook, StartScheduledRun
from sous_executor.config import ExecutorSettings
from sous_executor.domain.execution import Execution
from sous_executor.domain.inputs import resolve_inputs
from sous_executor.domain.output_checks import referenced_agents
from sous_executor.domain.outputs import summary_result
from sous_executor.domain.planning import build_plan, parse_steps
from sous_executor.domain.step_start import opening_starts
from sous_executor.engine.step_engine import StepEngine
from sous_executor.quotas import admission_for, check_graph, quota_for, refused_as_rate_limit, with_budget
from sous_executor.use_cases.execute_answers import accepted, started_under_key
from sous_executor.webhooks.deliveries import admit
from sous_service.caller import Caller
from sous_service.domain_errors import Conflict, InputInvalid, NotFound
from sous_service.internal_context import InternalContext
from sous_service.owner_reads import OwnerReads
from sous_service.unit_of_work import UnitOfWork, UnitOfWorks

FINISHED = ("completed", "failed", "cancelled")
CANCEL_REQUESTED = "cancellation requested"
# A running execution appends often: a cancel may lose a few races with its runner before it lands.
CANCEL_ATTEMPTS = 20


def _changing_fast(_: BaseException) -> Conflict:
    return Conflict("the execution is changing too fast; retry")


@dataclass(kw_only=True, eq=False)
class ExecutorService:
    """The executor's use cases, over its sessions, event store, catalog client and step engine."""

    settings: ExecutorSettings
    sessions: async_sessionmaker[AsyncSession]
    store: EventStore
    catalog: CatalogClient
    engine: StepEngine
    quality_scores: QualityScores = field(
        default_factory=lambda: QualityScores(OwnerReads("", "", "quality", reader="executor"))
    )
    leases: Leases = field(init=False)
    uows: UnitOfWorks = field(init=False)
    views: ExecutionViews = field(init=False)
    start_slots: asyncio.Semaphore = field(init=False)
    reads: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        # A burst of starts holds at most half of the pool (its base size; overflow doubles it) and waits for
        # the rest in memory, not on checked-out connections: the runs in flight keep theirs for their appends.
        self.start_slots = asyncio.Semaphore(self.settings.database_pool_size)
        self.leases = self.engine.leases
        # The replicas a start reads: single statements, no BEGIN and ROLLBACK round trips around them.
        bind = self.sessions.kw["bind"]
        self.reads = async_sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
        self.uows = UnitOfWorks(self.sessions, producer=PRODUCER, store=self.store)
        self.views = ExecutionViews(
            self.sessions,
            self.settings,
            statements=self.engine.stream.statements,
            load_recipe=self.load_recipe,
            quality_scores=self.quality_scores,
        )

    # ------------------------------------------------------------ replicas
    async def on_recipe_published(
        self, session: AsyncSession, envelope: Envelope, payload: RecipeCreated | RecipeUpdated
    ) -> None:
        recipe = payload.recipe
        workspace = recipe.workspace_id or envelope.workspace_id
        await repo.upsert_recipe(session, workspace, recipe.as_dict(), recipe.revision or envelope.aggregate_version)

    async def on_recipe_deleted(self, session: AsyncSession, envelope: Envelope, payload: RecipeDeleted) -> None:
        await repo.delete_recipe(session, envelope.workspace_id, payload.recipe_id, payload.template_id)

    async def on_agent_published(
        self, session: AsyncSession, envelope: Envelope, payload: AgentRegistered | AgentUpdated
    ) -> None:
        agent = payload.agent
        workspace = agent.workspace_id or envelope.workspace_id
        await repo.upsert_agent(session, workspace, agent.as_dict(), agent.revision or envelope.aggregate_version)

    async def on_agent_removed(self, session: AsyncSession, envelope: Envelope, payload: AgentRemoved) -> None:
        await repo.delete_agent(session, payload.agent_id, envelope.workspace_id)

    async def load_recipe(self, workspace_id: str, template_id: str) -> dict[str, Any] | None:
        async with self.reads() as session:
            recipe = await repo.get_recipe(session, workspace_id, template_id)
        if recipe is not None:
            return recipe
        recipe = await self.catalog.recipe(workspace_id, template_id)
        if recipe is not None:
            async with self.sessions() as session, session.begin():
                # A stale answer (older than the replica, or of a deleted recipe) loses to what is stored.
                if not await repo.upsert_recipe(session, workspace_id, recipe, int(recipe.get("revision") or 0)):
                    return await repo.get_recipe(session, workspace_id, template_id)
        return recipe

    async def load_agents(self, workspace_id: str, recipe: dict[str, Any]) -> dict[str, dict[str, Any]]:
        ids = sorted(referenced_agents(recipe.get("steps") or []))
        async with self.reads() as session:
            agents = await repo.get_agents(session, workspace_id, ids)
        for agent_id in ids:
            if agent_id not in agents:
                fetched = await self.catalog.agent(workspace_id, agent_id)
                if fetched is not None:
                    async with self.sessions() as session, session.begin():
                        # A stale answer (of a removed agent) loses to the replica's tombstone.
                        if await repo.upsert_agent(session, workspace_id, fetched, int(fetched.get("revision") or 0)):
                            agents[agent_id] = fetched
                        else:
                            agents.update(await repo.get_agents(session, workspace_id, [agent_id]))
        return agents

    async def load_start(self, workspace_id: str, template_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The recipe and its agents a start needs: from the replicas in one read when they hold them all,
        else as load_recipe and load_agents find them (the catalog fills what the replicas miss)."""
        found = await repo.get_recipe_with_agents(self.engine.stream.statements, workspace_id, template_id)
        if found is not None:
            recipe, replicated = found
            ids = referenced_agents(recipe.get("steps") or [])
            if ids <= replicated.keys():
                return recipe, {agent_id: replicated[agent_id] for agent_id in sorted(ids)}
        else:
            loaded = await self.load_recipe(workspace_id, template_id)
            if loaded is None:
                raise NotFound("recipe", template_id)
            recipe = loaded
        return recipe, await self.load_agents(workspace_id, recipe)

    async def cron_recipes(self) -> list[tuple[str, dict[str, Any], Any]]:
        """Every replicated recipe with a cron schedule: (workspace, recipe, when it was replicated)."""
        async with self.sessions() as session:
            return await repo.cron_recipes(session)

    # ------------------------------------------------------------ start
    async def execute(
        self,
        ctx: InternalContext,
        template_id: str,
        input_data: dict[str, Any] | None,
        *,
        triggered_by: str = "manual",
        workspace_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        workspace = workspace_id if workspace_id is not None else ctx.workspace_id
        recipe, agents = await self.load_start(workspace, template_id)
        command = StartExecution(
            workspace_id=workspace,
            recipe=recipe,
            agents=agents,
            input_data=input_data,
            triggered_by=triggered_by,
            idempotency_key=idempotency_key,
        )
        return await self.start(command, Caller.from_context(ctx))

    async def start(self, command: StartExecution, caller: Caller) -> dict[str, Any]:
        """Start an execution in a unit of work of its own; without an idempotency key its one statement
        commits on its own (the unit of work still starts the run after it, and retries a conflict)."""
        handler = partial(self.request_execution, alone=command.idempotency_key is None)
        async with self.start_slots:
            return await self.uows.run(handler, command, caller)

    async def start_scheduled(self, command: StartScheduledRun, caller: Caller) -> str | None:
        """The execution id of the cron run started for that due time; None when another instance took it."""
        agents = await self.load_agents(command.workspace_id, command.recipe)
        execution_id = new_id()
        start = StartExecution(
            workspace_id=command.workspace_id,
            recipe=command.recipe,
            agents=agents,
            input_data={},
            triggered_by="cron",
            execution_id=execution_id,
        )

        async def in_its_slot(start: StartExecution, uow: UnitOfWork) -> str | None:
            template_id = str(start.recipe["template_id"])
            if not await repo.take_schedule_slot(
                uow.session, start.workspace_id, template_id, command.due_at, execution_id
            ):
                return None
            await self.request_execution(start, uow)
            return execution_id

        return await self.uows.run(in_its_slot, start, caller)

    async def start_from_webhook(self, command: StartFromWebhook, caller: Caller) -> dict[str, Any]:
        agents = await self.load_agents(command.workspace_id, command.recipe)
        start = StartExecution(
            workspace_id=command.workspace_id,
            recipe=command.recipe,
            agents=agents,
            input_data=command.input_data,
            triggered_by="webhook",
        )

        async def once_admitted(start: StartExecution, uow: UnitOfWork) -> dict[str, Any]:
            limit = self.settings.webhook_rate_limit_per_minute
            await admit(uow.session, command.webhook_id, command.message_id, limit)
            return await self.request_execution(start, uow)

        async with self.start_slots:
            return await self.uows.run(once_admitted, start, caller)

    async def request_execution(
        self, command: StartExecution, uow: UnitOfWork, *, alone: bool = False
    ) -> dict[str, Any]:
        """Validate and append ExecutionRequested with its read-model row; claim the run here if there is room.

        Every start (execute, rerun, replay, cron, webhook, a workflow's stage) goes through here: the claim
        is written in the same transaction, and the run starts once it commits (StepEngine.reserve_here).
        `alone`: the unit of work writes nothing else, so the append is sent as a statement of its own.
        """
        workspace_id = command.workspace_id
        session = uow.session
        execution_id = command.execution_id or new_id()
        if command.idempotency_key is not None:
            # First: a repeat answers with the run it repeats, even if the recipe has changed since.
            ttl_s = self.settings.idempotency_key_ttl_s
            earlier = await started_under_key(session, command, command.idempotency_key, execution_id, ttl_s)
            if earlier is not None:
                return earlier
        recipe = command.recipe
        steps = recipe.get("steps") or []
        check_graph(recipe, self.settings)
        quota = quota_for(self.settings, workspace_id)
        recipe = with_budget(recipe, quota)
        data = resolve_inputs(recipe.get("inputs") or {}, command.input_data, missing_text_as_empty=True)

        def event(payload: EventPayload, version: int) -> Envelope:
            return make_event(
                payload,
                producer=PRODUCER,
                workspace_id=workspace_id,
                aggregate_id=execution_id,
                aggregate_version=version,
                correlation_id=execution_id,
                actor=uow.caller.actor,
            )

        requested = ExecutionRequested(
            execution_id=execution_id,
            template_id=str(recipe["template_id"]),
            recipe=recipe,
            agents=command.agents,
            input_data=data,
            triggered_by=command.triggered_by,
            rerun_of=command.rerun_of,
            from_step=command.from_step,
            reused_results=list(command.reused_results),
            step_overrides=dict(command.step_overrides),
        )
        stream = [event(requested, 1)]
        payloads: list[EventPayload] = [requested]
        execution = Execution()
        claimed = self.engine.reserve_here(uow, execution, stream)
        if claimed:
            # Claimed here: the run is started in this transaction, by this instance, under its lease.
            started = ExecutionStarted(
                execution_id=execution_id,
                template_id=str(recipe["template_id"]),
                runner_id=self.settings.runner_id,
                total_steps=len(steps),
            )
            stream.append(event(started, 2))
            payloads.append(started)
            # Its first steps start with it: the run goes straight to their model calls.
            for envelope, payload in zip(stream, payloads, strict=True):
                execution.apply(envelope, payload)
            for opening in opening_starts(execution):
                envelope = event(opening, execution.version + 1)
                execution.apply(envelope, opening)
                stream.append(envelope)
                payloads.append(opening)
        # Admitted at the commit, under the workspace's lock: its other starts overlap until then.
        admission = admission_for(workspace_id, quota, self.settings.max_concurrent_executions_per_workspace)
        with refused_as_rate_limit():
            await append_requested(
                session,
                self.store,
                execution,
                stream,
                leases=self.leases,
                claimed=claimed,
                admission=admission,
                payloads=payloads,
                folded=len(stream) if claimed else 0,
                alone_on=self.engine.stream.statements if alone else None,
            )
        name = recipe.get("name") or recipe["template_id"]
        return accepted(execution_id, recipe, "started", len(steps), f"Execution of recipe '{name}' started")

    # ------------------------------------------------------------ runners (consumer)
    async def claim_requested(self, session: AsyncSession, envelope: Envelope) -> bool:
        return await self.leases.claim_new(session, envelope.aggregate_id, envelope.workspace_id)

    # ------------------------------------------------------------ cancel / rerun
    async def cancel(self, ctx: InternalContext, template_id: str, eid: str, reason: str = "") -> dict[str, Any]:
        command = CancelExecution(template_id=template_id, execution_id=eid, reason=reason)
        result = await self.uows.run(
            self.request_cancel, command, Caller.from_context(ctx), attempts=CANCEL_ATTEMPTS, conflict=_changing_fast
        )
        if result["message"] == CANCEL_REQUESTED:
            self.engine.signal_cancel(eid)
        return result

    async def request_cancel(self, command: CancelExecution, uow: UnitOfWork) -> dict[str, Any]:
        eid = command.execution_id
        row = await owned_execution(uow.session, uow.caller.workspace_id, command.template_id, eid)
        if row.status in FINISHED:
            raise Conflict(f"execution '{eid}' already {row.status}")
        execution = Execution.from_events(await uow.load(AGGREGATE, eid))
        if execution.cancel_requested:
            return {"execution_id": eid, "status": "cancelling", "message": "cancellation already requested"}
        # The cancel joins the execution's own correlation, whoever asks for it.
        joined = self.uows.joined(uow.session, replace(uow.caller, correlation_id=execution.correlation_id))
        payload = ExecutionCancelRequested(execution_id=eid, reason=command.reason or "cancelled by user")
        envelope = await joined.record(payload, aggregate_id=eid, expected_version=execution.version)
        execution.apply(envelope)
        await repo.project_execution(uow.session, execution)
        return {"execution_id": eid, "status": "cancelling", "message": CANCEL_REQUESTED}

    async def rerun(
        self,
        ctx: InternalContext,
        template_id: str,
        eid: str,
        from_step: str | None,
        step_overrides: dict[str, dict[str, Any]] | None,
    ) -> dict[str, Any]:
        async with self.sessions() as session:
            await owned_execution(session, ctx.workspace_id, template_id, eid)
            events = await self.store.load(session, AGGREGATE, eid)
        original = Execution.from_events(events)
        if not original.finished:
            raise Conflict(f"execution '{eid}' is still {original.status}; rerun a finished one")
        specs = parse_steps(original.recipe.get("steps") or [])
        by_id = {s.step_id: s for s in specs}
        overrides = dict(step_overrides or {})
        for sid, override in overrides.items():
            if sid not in by_id:
                raise InputInvalid.single(f"step_overrides.{sid}", "unknown step")
            if not isinstance(override, dict) or not isinstance(override.get("prompt_template"), str):
                raise InputInvalid.single(f"step_overrides.{sid}.prompt_template", "a string is required")
        reused: list[dict[str, Any]] = []
        if from_step is not None:
            if from_step not in by_id:
                raise InputInvalid.single("from_step", f"unknown step '{from_step}'")
            plan = build_plan(specs, original.recipe.get("execution_config") or {})
            rerun_set = {s.step_id for s in specs if s.order >= by_id[from_step].order} | plan.descendants(from_step)
            rerun_set.add(from_step)
            for step in original.ordered_steps():
                if step.step_id not in rerun_set and step.status == "completed" and step.step_id not in overrides:
                    # Named, not copied: the runner reads the kept outputs from this run (they could outgrow one event).
                    reused.append(summary_result(step.result()))
        command = StartExecution(
            workspace_id=ctx.workspace_id,
            recipe=original.recipe,
            agents=original.agents,
            input_data=original.input_data,
            triggered_by="rerun",
            rerun_of=eid,
            from_step=from_step,
            reused_results=reused,
            step_overrides=overrides,
        )
        return await self.start(command, Caller.from_context(ctx))
