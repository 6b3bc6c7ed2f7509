// Execution Kitchen: the workspace's active runs, each following its own event stream live.
import { get, post } from "../api.js";
import { follow, isFinished, newRun, orderedSteps } from "../runs.js";
import { badge, button, clear, fmtTime, h, heading, table, toast } from "../ui.js";

const LIST_REFRESH_MS = 10000;

export async function render(root, _params, { signal }) {
  const cards = h("div", { class: "cards", "aria-live": "polite" });
  const recent = h("section", { "aria-labelledby": "recent-title" });
  const load = h("p", { class: "muted" });
  const followed = new Map(); // execution id -> {run, card, controller}

  root.append(
    heading("Execution Kitchen", button("Refresh", () => refresh(), { class: "secondary" })),
    load,
    h("h2", { text: "Active runs" }),
    cards,
    recent,
  );

  function drawCard(entry) {
    const { run } = entry;
    const steps = orderedSteps(run);
    const done = steps.filter((s) => ["completed", "failed", "skipped", "cancelled"].includes(s.status)).length;
    const card = entry.card;
    clear(card);
    card.dataset.status = run.status;
    const progress = h("progress", { max: String(steps.length || 1), value: String(done), "aria-label": `Progress of ${run.recipeName || run.recipeId}` });
    card.append(
      h(
        "div",
        { class: "card-head" },
        h("a", { href: `#/executions/${encodeURIComponent(run.recipeId)}/${encodeURIComponent(run.executionId)}` }, run.recipeName || run.recipeId),
        badge(run.cancelRequested && !isFinished(run.status) ? "cancelling" : run.status),
      ),
      progress,
      h("span", { class: "muted", text: `${done} of ${steps.length} steps` }),
      h(
        "ol",
        { class: "chips" },
        steps.map((s) =>
          h(
            "li",
            { class: `chip ${s.status}`, dataset: { step: s.stepId, status: s.status } },
            h("span", { class: "chip-name", text: s.stepId }),
            h("span", { class: "chip-status", text: s.attempts.length > 1 ? `${s.status} · attempt ${s.attempts.length}` : s.status }),
          ),
        ),
      ),
      isFinished(run.status)
        ? null
        : button("Cancel", async () => {
            try {
              await post(`/api/workflow-recipes/${encodeURIComponent(run.recipeId)}/executions/${encodeURIComponent(run.executionId)}/cancel`);
              toast("Cancellation requested");
            } catch (error) {
              toast(error.message, "error");
            }
          }, { class: "danger small", "aria-label": `Cancel ${run.recipeName || run.recipeId}` }),
    );
  }

  function track(summary) {
    if (followed.has(summary.execution_id)) return;
    const run = newRun(summary.execution_id, summary.recipe_id);
    run.recipeName = summary.recipe_name || "";
    run.status = summary.status;
    const card = h("article", { class: "card run-card", dataset: { execution: summary.execution_id } });
    const controller = new AbortController();
    signal.addEventListener("abort", () => controller.abort());
    const entry = { run, card, controller };
    followed.set(summary.execution_id, entry);
    cards.prepend(card);
    drawCard(entry);
    follow(run, () => drawCard(entry), controller.signal)
      .catch((error) => {
        if (error.name !== "AbortError") card.append(h("p", { class: "field-error", text: `stream: ${error.message}` }));
      })
      .finally(() => drawCard(entry));
  }

  async function refresh() {
    const data = await get("/api/workflows/active", {}, signal);
    load.textContent = `${data.total_active} active · ${data.capacity.running} running of a limit of ${data.capacity.limit} · ${data.total_recipe_runs} runs in this workspace`;
    for (const summary of [...data.active_workflows].reverse()) track(summary);
    if (!followed.size) {
      if (!cards.querySelector(".empty")) cards.append(h("p", { class: "empty", text: "Nothing is cooking. Start a run from a recipe." }));
    } else {
      const empty = cards.querySelector(".empty");
      if (empty) empty.remove();
    }
    clear(recent).append(
      h("h2", { id: "recent-title", text: "Recent runs" }),
      table(
        ["Recipe", "Status", "Progress", "Started", "Tokens", ""],
        data.recipe_runs.map((summary) =>
          h(
            "tr",
            {},
            h("td", { text: summary.recipe_name || summary.recipe_id }),
            h("td", {}, badge(summary.status)),
            h("td", { text: `${summary.finished_steps}/${summary.total_steps}` }),
            h("td", { text: fmtTime(summary.started_at || summary.created_at) }),
            h("td", { text: String(summary.total_tokens ?? "–") }),
            h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(summary.recipe_id)}/${encodeURIComponent(summary.execution_id)}`, "aria-label": `Details of ${summary.execution_id}` }, "Details")),
          ),
        ),
      ),
    );
  }

  await refresh();
  // New runs appear through one list request now and then; each run's progress comes from its stream.
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") refresh().catch(() => {});
  }, LIST_REFRESH_MS);
  return () => {
    clearInterval(timer);
    for (const entry of followed.values()) entry.controller.abort();
  };
}

