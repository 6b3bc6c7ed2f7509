"""A step attempt's start: the prompt it is given and the StepStarted that records it.

A fresh run's first steps can be started by the transaction that requests the run, when the instance that
accepts the request runs it (`opening_starts`): their StepStarted events are written with ExecutionRequested
and ExecutionStarted, so the run goes straight to their model calls with no append of its own first. They are
the events the run would have written itself, one commit earlier; a runner that dies before answering leaves
them unanswered, and the next runner starts those steps' next attempt, as after any interrupted attempt.
"""

from __future__ import annotations

from typing import Any

from sous_events.events.executor import StepStarted
from sous_executor.domain.execution import Execution
from sous_executor.domain.output_checks import ContractError, contract_of, feedback, schema_instruction
from sous_executor.domain.planning import Plan, PlanError, StepSpec, build_plan, parse_steps
from sous_executor.domain.prompts import step_prompt
from sous_service.output_checks import OutputContract
from sous_service.text import clean_text

MAX_PROMPT_IN_EVENT = 8000


def step_contract(execution: Execution, step_id: str) -> OutputContract:
    """The step's output contract as its recipe declares it; raises ContractError when it is invalid."""
    steps: list[dict[str, Any]] = execution.recipe.get("steps") or []
    return contract_of(next((s for s in steps if str(s.get("step_id")) == step_id), {}))


def with_contract(execution: Execution, spec: StepSpec, prompt: str) -> str:
    """The prompt with the schema to answer in and, after an output_invalid attempt, what failed.

    Raises ContractError when the step's output contract is invalid."""
    contract = step_contract(execution, spec.step_id)
    if not contract.declared:
        return prompt
    refused = execution.steps[spec.step_id].check_failures
    if refused:
        # The latest refusal, even when a later attempt was interrupted before answering.
        return prompt + feedback(refused[-1]["failed_checks"], contract.output_schema)
    if contract.output_schema is not None:
        return prompt + schema_instruction(contract.output_schema)
    return prompt


def step_started(execution: Execution, spec: StepSpec, attempt: int, prompt: str) -> StepStarted:
    step = execution.steps[spec.step_id]
    return StepStarted(
        execution_id=execution.execution_id,
        step_id=spec.step_id,
        order=step.order,
        attempt=attempt,
        agent_id=step.agent_id,
        agent_name=step.agent_name,
        prompt=clean_text(prompt[:MAX_PROMPT_IN_EVENT]),
    )


def opening_starts(execution: Execution) -> list[StepStarted]:
    """The first attempts of the steps a fresh run starts at once (its plan's ready steps), as StepStarted.

    None for a rerun (it records the steps it keeps first), for a recipe whose plan or a first step's output
    contract is invalid (the run records that failure itself), and for a run that has started steps already.
    """
    if execution.rerun_of or execution.reused_results or any(s.status != "pending" for s in execution.steps.values()):
        return []
    try:
        config = execution.recipe.get("execution_config") or {}
        plan: Plan = build_plan(parse_steps(execution.recipe.get("steps") or []), config)
        starts = []
        for step_id in plan.ready(set(), set()):
            spec = plan.by_id[step_id]
            if step_id not in execution.steps:
                return []
            prompt = with_contract(execution, spec, step_prompt(execution, plan, spec).text)
            starts.append(step_started(execution, spec, 1, prompt))
    except (PlanError, ContractError):
        return []
    return starts
