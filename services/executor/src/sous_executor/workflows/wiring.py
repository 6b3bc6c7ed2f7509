"""Plugs workflows into the executor process: runner, run consumer, routes (the quality signals' handlers
join the executor's replica group, bootstrap.py)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter

from sous_executor.engine.step_engine import StepEngine
from sous_executor.handlers import ExecutorService
from sous_executor.workflows.api import build_workflow_router
from sous_executor.workflows.consumers import run_consumer
from sous_executor.workflows.runner import WorkflowRunner, WorkflowTimings
from sous_executor.workflows.service import WorkflowService
from sous_service.runtime import ServiceRuntime


@dataclass
class Workflows:
    runner: WorkflowRunner
    service: WorkflowService
    router: APIRouter


def install_workflows(
    runtime: ServiceRuntime, service: ExecutorService, engine: StepEngine, timings: WorkflowTimings | None = None
) -> Workflows:
    runner = WorkflowRunner(
        settings=service.settings,
        sessions=runtime.sessions,
        store=runtime.store,
        service=service,
        clients=engine.clients,
        timings=timings,
    )
    workflows = WorkflowService(service, runner)
    runtime.add_consumer(run_consumer(runner))
    runtime.on_start(runner.start)
    runtime.on_stop(runner.stop)
    return Workflows(runner, workflows, build_workflow_router(workflows))
