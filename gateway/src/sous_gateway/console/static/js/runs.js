// An execution's state, folded from its event stream (GET …/executions/{id}/events, Server-Sent Events).
import { streamEvents } from "./api.js";

const FINISHED = new Set(["completed", "failed", "cancelled"]);

export function isFinished(status) {
  return FINISHED.has(status);
}

export function newRun(executionId, recipeId) {
  return {
    executionId,
    recipeId,
    recipeName: "",
    status: "pending",
    steps: new Map(), // step_id -> step
    totals: null,
    error: null,
    rerunOf: null,
    fromStep: null,
    cancelRequested: false,
  };
}

function step(run, stepId, order = 0) {
  if (!run.steps.has(stepId)) {
    run.steps.set(stepId, {
      stepId,
      order,
      agentName: "",
      status: "pending",
      attempts: [],
      output: "",
      toolCalls: [],
      tokens: 0,
      cost: 0,
      durationMs: null,
      reused: false,
      error: null,
      dependsOn: [],
      nextRetry: null,
    });
  }
  return run.steps.get(stepId);
}

function attempt(target, number) {
  let found = target.attempts.find((a) => a.attempt === number);
  if (!found) {
    found = { attempt: number, status: "running", startedAt: null, durationMs: null, tokens: 0, cost: 0, error: null, toolCalls: [] };
    target.attempts.push(found);
    target.attempts.sort((a, b) => a.attempt - b.attempt);
  }
  return found;
}

// Applies one envelope ({event_type, payload, occurred_at, ...}); returns the run.
export function apply(run, envelope) {
  const p = envelope.payload || {};
  switch (envelope.event_type) {
    case "ExecutionRequested": {
      run.recipeName = (p.recipe && p.recipe.name) || run.recipeName;
      run.rerunOf = p.rerun_of || null;
      run.fromStep = p.from_step || null;
      for (const spec of (p.recipe && p.recipe.steps) || []) {
        const s = step(run, spec.step_id, spec.order);
        s.dependsOn = spec.depends_on || [];
        s.agentName = (p.agents && p.agents[spec.agent_id] && p.agents[spec.agent_id].name) || s.agentName;
      }
      for (const result of p.reused_results || []) {
        const s = step(run, result.step_id, result.order);
        Object.assign(s, { status: "completed", reused: true, output: result.output || "" });
      }
      break;
    }
    case "ExecutionStarted":
      run.status = "running";
      break;
    case "StepStarted": {
      const s = step(run, p.step_id, p.order);
      s.status = "running";
      s.agentName = p.agent_name || s.agentName;
      s.nextRetry = null;
      attempt(s, p.attempt || 1).startedAt = envelope.occurred_at;
      break;
    }
    case "StepCompleted": {
      const s = step(run, p.step_id, p.order);
      const a = attempt(s, p.attempt || 1);
      Object.assign(a, {
        status: "completed",
        durationMs: p.duration_ms,
        tokens: (p.tokens && p.tokens.total) || 0,
        cost: p.cost_usd || 0,
        toolCalls: p.tool_calls || [],
      });
      Object.assign(s, { status: "completed", output: p.output || "", toolCalls: p.tool_calls || [], reused: Boolean(p.reused) });
      break;
    }
    case "StepFailed": {
      const s = step(run, p.step_id, p.order);
      const a = attempt(s, p.attempt || 1);
      Object.assign(a, {
        status: "failed",
        durationMs: p.duration_ms,
        tokens: (p.tokens && p.tokens.total) || 0,
        cost: p.cost_usd || 0,
        error: p.error,
        toolCalls: p.tool_calls || [],
      });
      s.status = p.will_retry ? "retrying" : "failed";
      s.error = p.error;
      break;
    }
    case "StepRetryScheduled": {
      const s = step(run, p.step_id);
      s.status = "retrying";
      s.nextRetry = { attempt: p.next_attempt, delay: p.delay_s, at: p.retry_at };
      break;
    }
    case "StepSkipped": {
      const s = step(run, p.step_id);
      s.status = "skipped";
      s.error = p.reason || null;
      break;
    }
    case "ExecutionCancelRequested":
      run.cancelRequested = true;
      break;
    case "ExecutionFinished":
      run.status = p.status;
      run.error = p.error || null;
      run.totals = p.totals || null;
      for (const result of p.step_results || []) {
        const s = step(run, result.step_id, result.order);
        s.status = result.status;
        s.output = result.output ?? s.output;
        s.toolCalls = result.tool_calls || s.toolCalls;
        s.tokens = (result.tokens_used && result.tokens_used.total) || 0;
        s.cost = result.cost_usd || 0;
        s.durationMs = result.duration_ms;
        s.error = result.error || s.error;
        s.agentName = result.agent_name || s.agentName;
      }
      break;
    default:
      break;
  }
  for (const s of run.steps.values()) {
    if (s.attempts.length && s.status !== "running") {
      s.tokens = Math.max(s.tokens, s.attempts.reduce((sum, a) => sum + (a.tokens || 0), 0));
      s.cost = Math.max(s.cost, s.attempts.reduce((sum, a) => sum + (a.cost || 0), 0));
      if (s.durationMs === null) s.durationMs = s.attempts.reduce((sum, a) => sum + (a.durationMs || 0), 0);
    }
  }
  return run;
}

export function orderedSteps(run) {
  return [...run.steps.values()].sort((a, b) => a.order - b.order || a.stepId.localeCompare(b.stepId));
}

// Follows the run live; onChange(run) after every event. Resolves when the stream ends.
// Follows until the run finishes. A stream that ends early (a proxy or process restart) is resumed after
// the last event seen, so a live view never freezes on a status that has moved on.
export async function follow(run, onChange, signal) {
  const path = `/api/workflow-recipes/${encodeURIComponent(run.recipeId)}/executions/${encodeURIComponent(run.executionId)}/events`;
  let lastId = "";
  let pause = 500;
  while (!signal.aborted) {
    await streamEvents(
      path,
      (message) => {
        if (message.id) lastId = message.id;
        if (message.data && typeof message.data === "object") {
          apply(run, message.data);
          onChange(run);
        }
      },
      signal,
      lastId,
    );
    if (isFinished(run.status) || signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 5000);
  }
}
