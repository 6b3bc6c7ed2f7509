// What-if replay: the form that starts one from a finished execution, and the report of a replay
// (per step reused or re-run, changed or not, the diff; the deltas of tokens, cost, duration, quality).
import { ApiError, get, post } from "../api.js";
import { badge, button, clear, field, fmtCost, fmtDuration, h, input, pre, select, table, toast } from "../ui.js";

export function replayForm(base, recipeId, stepIds) {
  const revision = input({ type: "number", min: "1", id: "replay-revision", placeholder: "the recipe this run used" });
  const step = select([["", "no prompt change"], ...stepIds.map((id) => [id, id])], "", { id: "replay-step" });
  const prompt = h("textarea", { rows: 2, id: "replay-prompt", placeholder: "the new prompt for that step" });
  const start = button("Replay", async () => {
    const body = {};
    if (revision.value) body.revision = Number(revision.value);
    if (step.value && prompt.value.trim()) body.step_overrides = { [step.value]: { prompt_template: prompt.value } };
    try {
      const started = await post(`${base}/replay`, body);
      toast(`Replay started: ${started.plan.rerun_steps.length} step(s) run again`);
      window.location.hash = `#/executions/${encodeURIComponent(recipeId)}/${encodeURIComponent(started.replay_execution_id)}`;
    } catch (error) {
      toast(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error), "error");
    }
  });
  return h(
    "form",
    { class: "rerun replay", "aria-label": "What-if replay", onsubmit: (event) => event.preventDefault() },
    h("h3", { text: "What-if replay" }),
    field("Recipe revision (optional)", revision, { hint: "From the recipe's version history" }),
    field("Step to change (optional)", step),
    field("Its new prompt", prompt, { hint: "Only changed steps and the steps after them run again" }),
    h("div", { class: "field" }, start),
  );
}

function signed(value, digits = 0) {
  if (value === null || value === undefined) return "–";
  const text = Number(value).toFixed(digits);
  return value > 0 ? `+${text}` : text;
}

export function drawReport(container, report) {
  const totals = report.totals;
  const delta = totals.delta;
  clear(container).append(
    h("h2", { id: "replay-title", text: "Replay report" }),
    h("p", { class: "status-line" }, badge(report.status), ` replay of `, h("a", { href: `#/executions/${encodeURIComponent(report.recipe_id)}/${encodeURIComponent(report.replay_of)}` }, report.replay_of), report.finished ? "" : " · running"),
    table(
      ["", "Tokens", "Cost", "Duration", "Quality"],
      ["original", "replay", "delta"].map((row) => {
        const values = totals[row];
        const isDelta = row === "delta";
        return h(
          "tr",
          { dataset: { row } },
          h("th", { scope: "row", text: row }),
          h("td", { text: isDelta ? signed(values.tokens) : String(values.tokens) }),
          h("td", { text: isDelta ? signed(values.cost_usd, 6) : fmtCost(values.cost_usd) }),
          h("td", { text: isDelta ? `${signed(values.duration_ms)} ms` : fmtDuration(values.duration_ms) }),
          h("td", { text: values.quality_score === null ? "not assessed" : isDelta ? signed(values.quality_score, 4) : String(values.quality_score) }),
        );
      }),
      "Totals (reused steps count at their recorded usage)",
    ),
    h(
      "ol",
      { class: "timeline", "aria-label": "Steps compared" },
      ...report.steps.map((s) =>
        h(
          "li",
          { class: "tl-step", dataset: { step: s.step_id, changed: String(s.output_changed) } },
          h("div", { class: "tl-head" }, h("strong", { text: s.step_id }), badge(s.rerun ? "re-run" : "reused", s.rerun ? "" : "muted"), badge(s.output_changed ? "changed" : "same", s.output_changed ? "" : "muted")),
          s.rerun && s.tokens_delta !== undefined && s.tokens_delta !== null
            ? h("p", { class: "tl-numbers", text: `${signed(s.tokens_delta)} tokens · ${signed(s.cost_usd_delta, 6)} USD · ${signed(s.duration_ms_delta)} ms` })
            : null,
          s.diff ? h("details", { open: true }, h("summary", { text: "Diff" }), pre(s.diff)) : null,
        ),
      ),
    ),
  );
}

export async function followReport(container, base, signal) {
  while (!signal.aborted) {
    const report = await get(`${base}/replay-report`, {}, signal);
    drawReport(container, report);
    const assessed = report.totals.delta.quality_score !== null;
    if (report.finished && assessed) return;
    await new Promise((resolve) => setTimeout(resolve, report.finished ? 10000 : 2000));
  }
}
