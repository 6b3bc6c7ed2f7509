// One recipe: its steps, actions, executions, and its version history with a diff between revisions.
import { ApiError, del, get, post, session } from "../api.js";
import { badge, button, clear, field, fmtDuration, fmtScore, fmtTime, h, heading, select, table, toast } from "../ui.js";

// Fields that change with every revision or are statistics: left out of the diff.
const NOISE = new Set(["updated_at", "revision", "use_count", "last_used_at", "popularity", "quality_score",
  "learning_data", "success_rate", "average_rating", "install_count"]);

export async function render(root, [templateId], { signal }) {
  const path = `/api/workflow-recipes/${encodeURIComponent(templateId)}`;
  const recipe = await get(path, {}, signal);
  const actions = h("div", { class: "actions" });
  if (session.has("executions:run")) actions.append(h("a", { class: "button primary", href: `#/recipes/${encodeURIComponent(templateId)}/run` }, "Run"));
  if (session.has("recipes:write") && !recipe.is_system) actions.append(h("a", { class: "button secondary", href: `#/recipes/${encodeURIComponent(templateId)}/edit` }, "Edit"));
  actions.append(h("a", { class: "button secondary", href: `#/recipes/${encodeURIComponent(templateId)}/quality` }, "Quality"));
  if (session.has("marketplace:submit")) actions.append(button("Submit to marketplace", () => submitListing(recipe), { class: "secondary" }));
  if (session.has("recipes:write") && !recipe.is_system) {
    actions.append(button("Delete", async () => {
      if (!window.confirm(`Delete recipe ${recipe.name}?`)) return;
      try {
        await del(path);
        toast("Recipe deleted");
        window.location.hash = "#/recipes";
      } catch (error) {
        toast(error.message, "error");
      }
    }, { class: "danger" }));
  }

  const config = recipe.execution_config || {};
  root.append(
    heading(recipe.name, recipe.is_system ? badge("system") : null, badge(`revision ${recipe.revision}`, "muted")),
    h("p", { class: "lead", text: recipe.description }),
    actions,
    h(
      "dl",
      { class: "facts" },
      fact("Id", h("code", { text: recipe.template_id })),
      fact("Mode", config.mode || "sequential"),
      fact("Quality", fmtScore(recipe.quality_score)),
      fact("Uses", String(recipe.use_count)),
      fact("Success rate", recipe.use_count ? `${Math.round((recipe.success_rate || 0) * 100)} %` : "–"),
      fact("Tags", (recipe.tags || []).join(", ") || "–"),
      fact("Updated", fmtTime(recipe.updated_at)),
    ),
    h("h2", { text: "Steps" }),
    table(
      ["#", "Step", "Agent", "On error", "Depends on", "Prompt"],
      (recipe.steps || []).map((step) =>
        h(
          "tr",
          {},
          h("td", { text: String(step.order) }),
          h("td", {}, h("code", { text: step.step_id })),
          h("td", { text: step.agent ? `${step.agent.name} (${step.agent.model})` : step.agent_id }),
          h("td", { text: `${step.error_handling || "stop"}${step.max_retries ? ` ×${step.max_retries}` : ""}` }),
          h("td", { text: (step.depends_on || []).join(", ") || "–" }),
          h("td", { class: "prompt", text: step.prompt_template }),
        ),
      ),
    ),
  );

  const executions = h("section", { "aria-labelledby": "executions-title" }, h("h2", { id: "executions-title", text: "Executions" }));
  const history = h("section", { "aria-labelledby": "history-title" }, h("h2", { id: "history-title", text: "Version history" }));
  root.append(executions, history);
  await Promise.all([drawExecutions(executions, templateId, signal), drawHistory(history, templateId, signal)]);
}

function fact(label, value) {
  return [h("dt", { text: label }), h("dd", {}, value)];
}

async function submitListing(recipe) {
  try {
    const result = await post("/api/workflow-recipes/submit", { recipe_id: recipe.template_id });
    toast(result.auto_approved ? "Published in the marketplace" : "Submitted: waiting for a moderator");
  } catch (error) {
    toast(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error), "error");
  }
}

async function drawExecutions(section, templateId, signal) {
  let page;
  try {
    page = await get(`/api/workflow-recipes/${encodeURIComponent(templateId)}/executions`, { limit: 10 }, signal);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      section.append(h("p", { class: "muted", text: "No executions yet." }));
      return;
    }
    throw error;
  }
  if (!page.items.length) {
    section.append(h("p", { class: "muted", text: "No executions yet." }));
    return;
  }
  section.append(
    table(
      ["Execution", "Status", "Started", "Duration", "Tokens", "Triggered by"],
      page.items.map((run) =>
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(templateId)}/${encodeURIComponent(run.execution_id)}` }, run.execution_id.slice(0, 13))),
          h("td", {}, badge(run.status)),
          h("td", { text: fmtTime(run.started_at) }),
          h("td", { text: fmtDuration(run.total_duration_ms) }),
          h("td", { text: String(run.total_tokens ?? "–") }),
          h("td", { text: run.triggered_by }),
        ),
      ),
      `${page.total} execution${page.total === 1 ? "" : "s"}, newest first`,
    ),
  );
}

async function drawHistory(section, templateId, signal) {
  const path = `/api/workflow-recipes/${encodeURIComponent(templateId)}/history`;
  const data = await get(path, {}, signal);
  const revisions = data.revisions || [];
  section.append(
    table(
      ["Revision", "Change", "Fields", "By", "When"],
      revisions.map((entry) =>
        h(
          "tr",
          {},
          h("td", { text: String(entry.revision) }),
          h("td", { text: entry.event_type }),
          h("td", { text: (entry.changed_fields || []).join(", ") || "–" }),
          h("td", { text: (entry.actor && entry.actor.user_id) || "–" }),
          h("td", { text: fmtTime(entry.occurred_at) }),
        ),
      ),
    ),
  );
  if (revisions.length < 2) return;
  const numbers = revisions.map((entry) => entry.revision);
  const from = select(numbers, numbers[numbers.length - 2]);
  const to = select(numbers, numbers[numbers.length - 1]);
  const output = h("div", { class: "diff", "aria-live": "polite" });
  const compare = button("Compare", async () => {
    clear(output);
    try {
      const [a, b] = await Promise.all([
        get(path, { revision: from.value }, signal),
        get(path, { revision: to.value }, signal),
      ]);
      output.append(diffTable(a.recipe || {}, b.recipe || {}, from.value, to.value));
    } catch (error) {
      output.append(h("p", { class: "field-error", text: error.message }));
    }
  }, { class: "secondary" });
  section.append(
    h("div", { class: "filters" }, field("From revision", from), field("To revision", to), h("div", { class: "field" }, compare)),
    output,
  );
}

function flatten(value, prefix, out) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (!keys.length && prefix) out[prefix] = "{}";
    for (const key of keys) {
      if (!prefix && NOISE.has(key)) continue;
      flatten(value[key], prefix ? `${prefix}.${key}` : key, out);
    }
  } else if (Array.isArray(value)) {
    if (!value.length && prefix) out[prefix] = "[]";
    value.forEach((item, index) => flatten(item, `${prefix}[${index}]`, out));
  } else {
    out[prefix] = value === null || value === undefined ? "null" : typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}

export function diffTable(before, after, fromLabel, toLabel) {
  const a = flatten(before, "", {});
  const b = flatten(after, "", {});
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const rows = [];
  for (const key of keys) {
    if (a[key] === b[key]) continue;
    const kind = !(key in a) ? "added" : !(key in b) ? "removed" : "changed";
    rows.push(
      h(
        "tr",
        { class: `diff-${kind}` },
        h("td", {}, h("code", { text: key })),
        h("td", { class: "before", text: key in a ? a[key] : "" }),
        h("td", { class: "after", text: key in b ? b[key] : "" }),
      ),
    );
  }
  if (!rows.length) return h("p", { class: "muted", text: "No difference in the recipe's definition." });
  return table(["Field", `Revision ${fromLabel}`, `Revision ${toLabel}`], rows, `${rows.length} change${rows.length === 1 ? "" : "s"}`);
}
