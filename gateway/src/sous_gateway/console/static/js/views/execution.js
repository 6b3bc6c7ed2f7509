// One execution: a live timeline of its steps (attempts, retries, durations, tokens, cost, tool calls,
// outputs), cancel, rerun from a chosen step, what-if replay and, for a replay, its report.
import { ApiError, get, post, session } from "../api.js";
import { follow, isFinished, newRun, orderedSteps } from "../runs.js";
import { followReport, replayForm } from "./replay.js";
import { badge, button, clear, field, fmtCost, fmtDuration, fmtTime, h, heading, pre, select, table, toast } from "../ui.js";

export async function render(root, [recipeId, executionId], { signal }) {
  const base = `/api/workflow-recipes/${encodeURIComponent(recipeId)}/executions/${encodeURIComponent(executionId)}`;
  let detail = await get(base, {}, signal);
  const run = newRun(executionId, recipeId);
  run.recipeName = detail.recipe_name;
  run.status = detail.status;

  const title = heading(`Execution of ${detail.recipe_name || recipeId}`);
  const status = h("p", { class: "status-line", "aria-live": "polite" });
  const summary = h("dl", { class: "facts" });
  const actions = h("div", { class: "actions" });
  const timeline = h("ol", { class: "timeline", "aria-label": "Steps" });
  const outputs = h("section", { "aria-labelledby": "output-title" });
  const replayReport = h("section", { "aria-labelledby": "replay-title" });
  root.append(
    title,
    h("p", {}, h("a", { href: `#/recipes/${encodeURIComponent(recipeId)}` }, "← Recipe"), " · ", h("a", { href: "#/kitchen" }, "Kitchen")),
    status,
    summary,
    actions,
    h("h2", { text: "Timeline" }),
    timeline,
    replayReport,
    outputs,
  );
  if (detail.triggered_by === "replay") {
    followReport(replayReport, base, signal).catch((error) => {
      if (error.name !== "AbortError") replayReport.append(h("p", { class: "field-error", text: `report: ${error.message}` }));
    });
  }

  function drawSummary() {
    const live = !isFinished(run.status);
    const label = run.cancelRequested && live ? "cancelling" : run.status;
    clear(status).append(badge(label), ` ${live ? "live" : "finished"} · ${executionId}`);
    status.dataset.status = run.status;
    const totals = run.totals;
    clear(summary).append(
      ...fact("Started", fmtTime(detail.started_at)),
      ...fact("Completed", fmtTime(detail.completed_at)),
      ...fact("Duration", fmtDuration(totals ? totals.duration_ms : detail.total_duration_ms)),
      ...fact("Tokens", String(totals ? totals.tokens : detail.total_tokens ?? "–")),
      ...fact("Cost", fmtCost(totals ? totals.cost_usd : detail.total_cost_usd)),
      ...fact("Triggered by", detail.triggered_by || "–"),
      ...(run.rerunOf ? fact(detail.triggered_by === "replay" ? "Replay of" : "Rerun of", h("code", { text: run.rerunOf })) : []),
      ...(run.fromStep ? fact("From step", run.fromStep) : []),
      ...(run.error || detail.error_message ? fact("Error", run.error || detail.error_message) : []),
    );
  }

  function drawTimeline() {
    const steps = orderedSteps(run);
    const longest = Math.max(1, ...steps.map((s) => s.durationMs || 0));
    clear(timeline);
    for (const s of steps) {
      const bar = h("span", { class: "bar" });
      bar.style.width = `${Math.max(2, Math.round(((s.durationMs || 0) / longest) * 100))}%`;
      timeline.append(
        h(
          "li",
          { class: `tl-step ${s.status}`, dataset: { step: s.stepId, status: s.status } },
          h(
            "div",
            { class: "tl-head" },
            h("strong", { text: s.stepId }),
            badge(s.status),
            s.reused ? badge("reused", "muted") : null,
            h("span", { class: "muted", text: s.agentName ? ` ${s.agentName}` : "" }),
          ),
          h("div", { class: "tl-bar", "aria-hidden": "true" }, bar),
          h(
            "p",
            { class: "tl-numbers" },
            s.reused && !s.attempts.length
              ? "reused from the earlier run"
              : `${fmtDuration(s.durationMs)} · ${s.tokens} tokens · ${fmtCost(s.cost)} · ${attemptsText(s)}`,
            s.nextRetry ? ` · retry ${s.nextRetry.attempt} in ${s.nextRetry.delay}s` : "",
          ),
          s.attempts.length > 1 || s.attempts.some((a) => a.error)
            ? table(
                ["Attempt", "Status", "Duration", "Tokens", "Error"],
                s.attempts.map((a) =>
                  h("tr", {}, h("td", { text: String(a.attempt) }), h("td", {}, badge(a.status)), h("td", { text: fmtDuration(a.durationMs) }), h("td", { text: String(a.tokens) }), h("td", { text: a.error || "–" })),
                ),
                "Attempts",
              )
            : null,
          s.toolCalls.length
            ? table(
                ["Tool", "Arguments", "Result", "Duration"],
                s.toolCalls.map((call) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, h("code", { text: call.name })),
                    h("td", {}, pre(call.arguments || {})),
                    h("td", {}, call.error ? h("span", { class: "field-error", text: call.error }) : pre(call.result ?? "")),
                    h("td", { text: fmtDuration(call.duration_ms) }),
                  ),
                ),
                "Tool calls",
              )
            : null,
          s.output ? h("details", {}, h("summary", { text: "Output" }), pre(s.output)) : null,
          s.error && s.status !== "completed" ? h("p", { class: "field-error", text: s.error }) : null,
        ),
      );
    }
  }

  function drawActions() {
    clear(actions);
    if (!session.has("executions:run")) return;
    if (!isFinished(run.status)) {
      actions.append(
        button("Cancel run", async () => {
          try {
            await post(`${base}/cancel`);
            toast("Cancellation requested");
          } catch (error) {
            toast(error instanceof ApiError ? error.message : String(error), "error");
          }
        }, { class: "danger", disabled: run.cancelRequested }),
      );
      return;
    }
    const steps = orderedSteps(run);
    const from = select([["", "the beginning"], ...steps.map((s) => [s.stepId, s.stepId])], "", { id: "rerun-from" });
    const override = h("textarea", { rows: 2, id: "rerun-prompt", placeholder: "leave empty to keep the recipe's prompt" });
    const rerun = button("Rerun", async () => {
      const body = {};
      if (from.value) body.from_step = from.value;
      if (from.value && override.value.trim()) body.step_overrides = { [from.value]: { prompt_template: override.value } };
      try {
        const started = await post(`${base}/rerun`, body);
        toast("Rerun started");
        window.location.hash = `#/executions/${encodeURIComponent(recipeId)}/${encodeURIComponent(started.recipe_execution_id)}`;
      } catch (error) {
        toast(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error), "error");
      }
    }, { class: "primary" });
    actions.append(
      h(
        "form",
        { class: "rerun", "aria-label": "Rerun", onsubmit: (event) => event.preventDefault() },
        field("Rerun from step", from, { hint: "Completed steps before it are reused" }),
        field("New prompt for that step (optional)", override),
        h("div", { class: "field" }, rerun),
      ),
      replayForm(base, recipeId, steps.map((s) => s.stepId)),
    );
  }

  function drawOutputs() {
    clear(outputs);
    if (!isFinished(run.status)) return;
    outputs.append(h("h2", { id: "output-title", text: "Inputs and outputs" }), h("h3", { text: "Inputs" }), pre(detail.input_data || {}), h("h3", { text: "Outputs" }), pre(detail.output_data || {}));
  }

  function draw() {
    drawSummary();
    drawTimeline();
  }

  let wasFinished = isFinished(run.status);
  let actionsKey = `${wasFinished}:false`;
  draw();
  drawActions();
  drawOutputs();
  const onChange = () => {
    draw();
    const finished = isFinished(run.status);
    const key = `${finished}:${run.cancelRequested}`;
    if (key !== actionsKey) {
      actionsKey = key;
      drawActions();
    }
    if (finished && !wasFinished) {
      wasFinished = true;
      get(base, {}, signal)
        .then((fresh) => {
          detail = fresh;
          draw();
          drawOutputs();
        })
        .catch(() => {});
    }
  };
  follow(run, onChange, signal).catch((error) => {
    if (error.name !== "AbortError") status.append(h("span", { class: "field-error", text: ` stream: ${error.message}` }));
  });
}

function attemptsText(step) {
  const count = Math.max(1, step.attempts.length);
  return `${count} attempt${count === 1 ? "" : "s"}`;
}

function fact(label, value) {
  return [h("dt", { text: label }), h("dd", {}, value)];
}
