"""One step attempt's conversation with its agent: model calls, tool calls, usage and budget.

Every call is fenced: it starts only while the run's lease is provably held and no cancel is pending,
and only once the budget gate admits it. Whatever comes back from outside (answers, tool arguments,
tool results) is cleaned of text PostgreSQL refuses before it can reach an event.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from openai import APITimeoutError

from sous_events import jsontext
from sous_events.events.executor import StepUsageRecorded, TokenUsage
from sous_executor.domain.budget_policy import estimate_call, estimate_prompt_tokens
from sous_executor.domain.planning import StepSpec
from sous_executor.engine.attempt import BudgetExceeded, InFlight, StepFailure
from sous_executor.engine.budget_gate import BudgetRefused
from sous_executor.llm.pricing import cost_usd
from sous_executor.observability import observe_model_cost, observed_completion, observed_tool
from sous_executor.tools.router import ToolNotAllowed
from sous_service.text import clean_json, clean_text

if TYPE_CHECKING:
    from sous_executor.engine.runner import Run


async def agent_loop(run: Run, spec: StepSpec, prompt: str, rec: InFlight) -> str:
    agent = run.agg.agents.get(spec.agent_id)
    if agent is None:
        raise StepFailure(f"agent {spec.agent_id!r} is not available", "config_error")
    if str(agent.get("status") or "active") == "disabled":
        raise StepFailure(f"agent {spec.agent_id!r} is disabled", "config_error")
    workspace_id = run.agg.workspace_id
    engine = run.engine
    target = await engine.clients.target(agent.get("model_config") or {}, workspace_id)
    client = engine.clients.client(target)
    skills = [str(s) for s in agent.get("skills") or []]
    tools = engine.router.openai_tools(skills, workspace_id=workspace_id)
    configuration = agent.get("configuration") or {}
    max_iterations = int(spec.max_iterations or configuration.get("max_iterations") or 10)
    system = str(
        agent.get("system_prompt")
        or configuration.get("system_prompt")
        or f"You are {agent.get('name') or 'an agent'}. {agent.get('description') or ''}".strip()
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    prices = run.settings.prices
    tools_chars = len(jsontext.dumps(tools)) if tools else 0
    for _ in range(max_iterations):
        kwargs: dict[str, Any] = {"model": target.model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
        if target.temperature is not None:
            kwargs["temperature"] = target.temperature
        if target.max_tokens:
            kwargs["max_tokens"] = target.max_tokens
        prompt_chars = len(jsontext.dumps(messages)) + tools_chars
        estimate = estimate_call(prompt_chars, target.max_tokens, run.settings.budget_completion_estimate)
        # The previous call's usage is on record before the next call can cost or fail.
        await run.journal.flush()
        run.checkpoint()
        try:
            ticket = await run.budget.acquire(estimate)
        except BudgetRefused as refused:
            raise BudgetExceeded(refused.reason) from None
        try:
            run.checkpoint()
            t0 = time.perf_counter()
            try:
                response = await observed_completion(client, kwargs, prices)
            except (asyncio.CancelledError, TimeoutError, APITimeoutError):
                # Cut before it answered: the provider had the prompt and bills it, so the budget does too.
                _charge_cut_call(run, spec, rec, target.model, estimate_prompt_tokens(prompt_chars))
                raise
            finally:
                rec.model_ms += (time.perf_counter() - t0) * 1000
            usage = response.usage
            if usage is not None:
                cost = cost_usd(prices, target.model, usage.prompt_tokens, usage.completion_tokens)
                rec.prompt_tokens += usage.prompt_tokens
                rec.completion_tokens += usage.completion_tokens
                rec.cost += cost
                observe_model_cost(prices, target.model, cost)
                run.journal.defer_usage(
                    _usage_event(run, spec, rec, usage.prompt_tokens, usage.completion_tokens, cost)
                )
        finally:
            await run.budget.release(ticket)
        over = run.budget.over()
        if over:
            raise BudgetExceeded(over)
        if not response.answered:
            raise StepFailure("model returned no choices", "empty_output")
        calls = response.tool_calls
        if calls:
            await run.journal.flush()  # tools act outside: the usage so far is on record first
            arguments = {c.id: clean_text(c.arguments) for c in calls}
            messages.append(
                {
                    "role": "assistant",
                    "content": clean_text(response.content) if response.content else response.content,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": clean_text(c.name), "arguments": arguments[c.id]},
                        }
                        for c in calls
                    ],
                }
            )
            for call in calls:
                run.checkpoint()
                name = clean_text(call.name)
                try:
                    record = await observed_tool(
                        name,
                        engine.router.has(name, workspace_id),
                        engine.router.call(skills, name, arguments[call.id], workspace_id=workspace_id),
                    )
                except ToolNotAllowed as exc:
                    rec.tool_calls.append(clean_json(exc.record))
                    raise
                record = clean_json(record)
                rec.tool_calls.append(record)
                reply = {"error": record["error"]} if record["error"] else {"result": record["result"]}
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(reply, default=str)})
            continue
        content = clean_text(response.content or "")
        if not content.strip():
            raise StepFailure("model returned an empty answer", "empty_output")
        return content
    raise StepFailure(f"no final answer within max_iterations={max_iterations}", "max_iterations")


def _charge_cut_call(run: Run, spec: StepSpec, rec: InFlight, model: str, prompt_tokens: int) -> None:
    """A call cut before it answered costs its prompt, estimated from its length (no completion came back)."""
    prices = run.settings.prices
    cost = cost_usd(prices, model, prompt_tokens, 0)
    rec.prompt_tokens += prompt_tokens
    rec.cost += cost
    observe_model_cost(prices, model, cost)
    run.journal.defer_usage(_usage_event(run, spec, rec, prompt_tokens, 0, cost, estimated=True))


def _usage_event(
    run: Run, spec: StepSpec, rec: InFlight, prompt: int, completion: int, cost: float, *, estimated: bool = False
) -> StepUsageRecorded:
    return StepUsageRecorded(
        execution_id=run.execution_id,
        step_id=spec.step_id,
        attempt=rec.attempt,
        tokens=TokenUsage(prompt=prompt, completion=completion, total=prompt + completion),
        cost_usd=round(cost, 8),
        estimated=estimated,
    )
