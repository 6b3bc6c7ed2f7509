"""A step's output contract at run time: the prompt asks for it, the answer is checked, a judge may score it.

A failing answer raises OutputInvalid (error_type `output_invalid`, with the failed checks): the step's
retry policy decides whether another attempt runs, and that attempt's prompt carries the failures.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sous_events.events.executor import FailedCheck
from sous_executor.domain.output_checks import (
    OUTPUT_INVALID,
    CheckResult,
    ContractError,
    check_name,
    check_output,
    judge_verdict,
)
from sous_executor.domain.planning import StepSpec
from sous_executor.domain.step_start import step_contract, with_contract
from sous_executor.engine.agent_loop import agent_loop
from sous_executor.engine.attempt import InFlight, StepFailure
from sous_service.output_checks import JudgeCheck, OutputContract

if TYPE_CHECKING:
    from sous_executor.engine.runner import Run

JUDGE_MAX_ITERATIONS = 3
JUDGE_PROMPT = (
    "You judge an answer against a rubric. Reply with JSON only: "
    '{{"score": <a number from 0 to 1>, "reason": "<one sentence>"}}.\n\n'
    "Rubric:\n{rubric}\n\nAnswer to judge:\n{answer}"
)


class OutputInvalid(StepFailure):
    def __init__(self, failures: tuple[CheckResult, ...]) -> None:
        names = ", ".join(f.name for f in failures)
        super().__init__(f"the answer failed its output checks: {names}", OUTPUT_INVALID)
        self.failures = failures

    def records(self) -> list[FailedCheck]:
        return [FailedCheck.model_validate(f.as_record()) for f in self.failures]


@dataclasses.dataclass(frozen=True)
class Answer:
    output: str
    output_format: str  # "json" when the step declares an output_schema


def _config_error(exc: ContractError) -> StepFailure:
    return StepFailure(f"invalid output contract: {exc}", "config_error")


def _contract(run: Run, spec: StepSpec) -> OutputContract:
    try:
        return step_contract(run.agg, spec.step_id)
    except ContractError as exc:
        raise _config_error(exc) from None


def contract_prompt(run: Run, spec: StepSpec, prompt: str) -> str:
    """The prompt with the schema to answer in and, after an output_invalid attempt, what failed."""
    try:
        return with_contract(run.agg, spec, prompt)
    except ContractError as exc:
        raise _config_error(exc) from None


async def checked_answer(run: Run, spec: StepSpec, prompt: str, rec: InFlight) -> Answer:
    """The agent's answer once it passes the step's contract; raises OutputInvalid otherwise."""
    contract = _contract(run, spec)
    answer = await agent_loop(run, spec, prompt, rec)
    if not contract.declared:
        return Answer(answer, "text")
    checked = check_output(contract, answer)
    failures = list(checked.failures)
    if not failures:
        for index, check in enumerate(contract.checks):
            if isinstance(check, JudgeCheck):
                verdict = await _judge(run, spec, check, check_name(check, index), answer, rec)
                if not verdict.passed:
                    failures.append(verdict)
    if failures:
        raise OutputInvalid(tuple(failures))
    return Answer(checked.output, "json" if contract.output_schema is not None else "text")


async def _judge(run: Run, spec: StepSpec, check: JudgeCheck, name: str, answer: str, rec: InFlight) -> CheckResult:
    # The judge's calls count as the step's own (usage, budget, fences): it runs inside the attempt.
    judge = dataclasses.replace(spec, agent_id=check.agent_id or spec.agent_id, max_iterations=JUDGE_MAX_ITERATIONS)
    reply = await agent_loop(run, judge, JUDGE_PROMPT.format(rubric=check.rubric, answer=answer), rec)
    return judge_verdict(check, name, reply)
