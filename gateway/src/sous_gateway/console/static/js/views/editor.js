// Create and edit a recipe; the API's 422 field paths are shown next to their fields.
import { ApiError, get, post, put } from "../api.js";
import { button, clear, field, h, heading, input, select, toast } from "../ui.js";

export async function renderCreate(root, _params, ctx) {
  const agents = await loadAgents(ctx.signal);
  const blank = {
    template_id: "",
    name: "",
    description: "",
    tags: [],
    steps: [{ step_id: "step-1", order: 1, agent_id: agents[0] ? agents[0].id : "", prompt_template: "" }],
    inputs: {},
    execution_config: { mode: "sequential", max_retries: 1, retry_delay: 5 },
    is_public: true,
  };
  root.append(heading("New recipe"));
  editor(root, blank, agents, { creating: true });
}

export async function renderEdit(root, [templateId], ctx) {
  const [recipe, agents] = await Promise.all([
    get(`/api/workflow-recipes/${encodeURIComponent(templateId)}`, {}, ctx.signal),
    loadAgents(ctx.signal),
  ]);
  root.append(heading(`Edit ${recipe.name}`, h("span", { class: "muted", text: `revision ${recipe.revision}` })));
  if (recipe.is_system) {
    root.append(h("p", { class: "notice", text: "System recipes are protected: they cannot be changed." }));
    return;
  }
  editor(root, recipe, agents, { creating: false });
}

async function loadAgents(signal) {
  const page = await get("/api/agents", { limit: 100 }, signal);
  return page.items || [];
}

function editor(root, recipe, agents, { creating }) {
  const fields = new Map(); // field path -> wrapper with showError
  const register = (path, wrapper) => {
    fields.set(path, wrapper);
    return wrapper;
  };
  const formError = h("div", { class: "form-error", role: "alert", hidden: true });

  const templateId = input({ value: recipe.template_id, required: true, autocomplete: "off", disabled: !creating });
  const name = input({ value: recipe.name, required: true });
  const description = h("textarea", { rows: 2 });
  description.value = recipe.description || "";
  const tags = input({ value: (recipe.tags || []).join(", ") });
  const config = recipe.execution_config || {};
  const mode = select(["sequential", "parallel"], config.mode || "sequential");
  const maxRetries = input({ type: "number", min: 0, step: 1, value: config.max_retries ?? 1 });
  const retryDelay = input({ type: "number", min: 0, step: "any", value: config.retry_delay ?? 5 });
  const inputsText = h("textarea", { rows: 4, class: "mono", spellcheck: "false" });
  inputsText.value = JSON.stringify(recipe.inputs || {}, null, 2);
  const isPublic = h("input", { type: "checkbox", id: "recipe-public" });
  isPublic.checked = recipe.is_public !== false;

  const stepsBox = h("div", { class: "steps" });
  const steps = (recipe.steps || []).map((step) => ({ ...step }));

  function stepEditor(step, index) {
    const prefix = `steps[${index}]`;
    const stepId = input({ value: step.step_id || "", required: true });
    const order = input({ type: "number", min: 0, step: 1, value: step.order ?? index + 1 });
    const agentOptions = [["", "— choose an agent —"], ...agents.map((agent) => [agent.id, agent.name])];
    if (step.agent_id && !agents.some((agent) => agent.id === step.agent_id)) agentOptions.push([step.agent_id, step.agent_id]);
    const agent = select(agentOptions, step.agent_id || "");
    const prompt = h("textarea", { rows: 3 });
    prompt.value = step.prompt_template || "";
    const onError = select(
      [
        ["stop", "stop the run"],
        ["continue", "continue"],
        ["retry", "retry with backoff"],
      ],
      step.error_handling === "skip" ? "continue" : step.error_handling || "stop",
    );
    const retries = input({ type: "number", min: 0, step: 1, value: step.max_retries ?? "" });
    const dependsOn = input({ value: (step.depends_on || []).join(", "), placeholder: "step ids, comma separated" });
    const bind = (control, key, parse = (v) => v) => {
      control.addEventListener("input", () => {
        step[key] = parse(control.value);
      });
      control.addEventListener("change", () => {
        step[key] = parse(control.value);
      });
    };
    bind(stepId, "step_id", (v) => v.trim());
    bind(order, "order", (v) => (v === "" ? null : Number(v)));
    bind(agent, "agent_id");
    bind(prompt, "prompt_template");
    bind(onError, "error_handling");
    bind(retries, "max_retries", (v) => (v === "" ? null : Number(v)));
    bind(dependsOn, "depends_on", splitList);
    const remove = button("Remove step", () => {
      steps.splice(index, 1);
      drawSteps();
    }, { class: "secondary small", "aria-label": `Remove step ${index + 1}` });
    return h(
      "fieldset",
      { class: "step" },
      h("legend", { text: `Step ${index + 1}` }),
      h(
        "div",
        { class: "grid" },
        register(`${prefix}.step_id`, field("Step id", stepId, { name: `${prefix}.step_id` })),
        register(`${prefix}.order`, field("Order", order, { name: `${prefix}.order` })),
        register(`${prefix}.agent_id`, field("Agent", agent, { name: `${prefix}.agent_id` })),
        register(`${prefix}.error_handling`, field("On error", onError, { name: `${prefix}.error_handling` })),
        register(`${prefix}.max_retries`, field("Max retries", retries, { name: `${prefix}.max_retries` })),
        register(`${prefix}.depends_on`, field("Depends on", dependsOn, { name: `${prefix}.depends_on` })),
      ),
      register(
        `${prefix}.prompt_template`,
        field("Prompt template", prompt, {
          name: `${prefix}.prompt_template`,
          hint: "Placeholders: {input.name}, {steps.<id>.output}, {previous_output}",
        }),
      ),
      register(prefix, messageHolder(remove)),
    );
  }

  function drawSteps() {
    for (const key of [...fields.keys()]) if (key.startsWith("steps[")) fields.delete(key);
    clear(stepsBox);
    steps.forEach((step, index) => stepsBox.append(stepEditor(step, index)));
  }
  drawSteps();

  const addStep = button("Add step", () => {
    const next = steps.length + 1;
    steps.push({ step_id: `step-${next}`, order: next, agent_id: agents[0] ? agents[0].id : "", prompt_template: "" });
    drawSteps();
    stepsBox.lastElementChild.querySelector("input").focus();
  }, { class: "secondary" });

  const sampleAgent = agents.length
    ? null
    : h(
        "p",
        { class: "notice" },
        "This workspace has no agent yet. ",
        button("Create an offline sample agent", async () => {
          try {
            await post("/api/agents", {
              name: "Sample writer",
              description: "Answers with the offline model",
              model_config: { provider: "offline", model_id: "sous-offline-1" },
              skills: ["text_stats", "calculator"],
              configuration: { max_iterations: 4 },
            });
            toast("Agent created");
            window.dispatchEvent(new HashChangeEvent("hashchange"));
          } catch (error) {
            toast(error.message, "error");
          }
        }, { class: "small" }),
      );

  const submit = h("button", { type: "submit", class: "primary" }, creating ? "Create recipe" : "Save changes");
  const form = h(
    "form",
    { class: "panel editor", novalidate: true, "aria-label": creating ? "New recipe" : "Edit recipe" },
    formError,
    sampleAgent,
    h(
      "div",
      { class: "grid" },
      register("template_id", field("Recipe id", templateId, { name: "template_id", hint: "letters, digits, - and _" })),
      register("name", field("Name", name, { name: "name" })),
      register("tags", field("Tags", tags, { name: "tags", hint: "comma separated" })),
      register("execution_config.mode", field("Mode", mode, { name: "execution_config.mode" })),
      register("execution_config.max_retries", field("Default retries", maxRetries, { name: "execution_config.max_retries" })),
      register("execution_config.retry_delay", field("Retry delay (s)", retryDelay, { name: "execution_config.retry_delay" })),
    ),
    register("description", field("Description", description, { name: "description" })),
    register(
      "inputs",
      field("Inputs (JSON)", inputsText, {
        name: "inputs",
        hint: '{"topic": {"type": "string", "required": true, "description": "…"}}',
      }),
    ),
    h("div", { class: "field checkbox" }, isPublic, h("label", { for: "recipe-public" }, "Public in this workspace")),
    h("h2", { text: "Steps" }),
    register("steps", h("div", { class: "field" }, stepsBox)),
    h("div", { class: "actions" }, addStep, submit, h("a", { class: "button secondary", href: creating ? "#/recipes" : `#/recipes/${encodeURIComponent(recipe.template_id)}` }, "Cancel")),
  );
  // The steps list as a whole ("steps: at least one") has its own message slot.
  const stepsHolder = fields.get("steps");
  const stepsError = h("p", { class: "field-error", role: "alert", hidden: true });
  stepsHolder.append(stepsError);
  stepsHolder.showError = (message) => {
    stepsError.textContent = message || "";
    stepsError.hidden = !message;
  };

  function clearErrors() {
    formError.hidden = true;
    clear(formError);
    for (const wrapper of fields.values()) if (wrapper.showError) wrapper.showError("");
  }

  function showErrors(error) {
    const unplaced = [];
    let first = null;
    for (const [path, message] of Object.entries(error.fields)) {
      const wrapper = closest(fields, path);
      if (wrapper && wrapper.showError) {
        const suffix = wrapper === fields.get(path) ? "" : ` (${path})`;
        wrapper.showError(`${message}${suffix}`);
        first = first || wrapper;
      } else {
        unplaced.push(`${path}: ${message}`);
      }
    }
    if (unplaced.length || !first) {
      formError.hidden = false;
      formError.append(h("p", { text: error.message }), ...unplaced.map((line) => h("p", { text: line })));
    }
    const focusable = first && first.querySelector("input, select, textarea, button");
    (focusable || formError).focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let inputs;
    try {
      inputs = JSON.parse(inputsText.value || "{}");
    } catch (parseError) {
      fields.get("inputs").showError(`Not valid JSON: ${parseError.message}`);
      inputsText.focus();
      return;
    }
    const body = {
      name: name.value.trim(),
      description: description.value,
      tags: splitList(tags.value),
      steps: steps.map(cleanStep),
      inputs,
      execution_config: {
        ...(recipe.execution_config || {}),
        mode: mode.value,
        max_retries: numberOr(maxRetries.value, 1),
        retry_delay: numberOr(retryDelay.value, 5),
      },
      is_public: isPublic.checked,
    };
    submit.disabled = true;
    try {
      if (creating) {
        const created = await post("/api/workflow-recipes", {
          template_id: templateId.value.trim(),
          template_definition: {},
          ...body,
        });
        toast(`Recipe ${created.recipe.name} created`);
        window.location.hash = `#/recipes/${encodeURIComponent(created.recipe.template_id)}`;
      } else {
        const updated = await put(`/api/workflow-recipes/${encodeURIComponent(recipe.template_id)}`, body, {
          "If-Match": String(recipe.revision),
        });
        toast(`Saved: revision ${updated.recipe.revision}`);
        window.location.hash = `#/recipes/${encodeURIComponent(recipe.template_id)}`;
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) showErrors(error);
      else if (error instanceof ApiError && error.status === 409 && !creating) {
        formError.hidden = false;
        formError.append(h("p", { text: `${error.message}. Reload the page to edit the latest revision.` }));
        formError.focus();
      } else if (error instanceof ApiError && error.status === 409) {
        fields.get("template_id").showError(error.message);
        templateId.focus();
      } else {
        formError.hidden = false;
        formError.append(h("p", { text: error.message }));
      }
    } finally {
      submit.disabled = false;
    }
  });
  formError.setAttribute("tabindex", "-1");
  root.append(form);
  (creating ? templateId : name).focus();
}

function messageHolder(...children) {
  const slot = h("p", { class: "field-error", role: "alert", hidden: true });
  const holder = h("div", { class: "field" }, ...children, slot);
  holder.showError = (message) => {
    slot.textContent = message || "";
    slot.hidden = !message;
  };
  return holder;
}

function closest(fields, path) {
  let candidate = path;
  while (candidate) {
    if (fields.has(candidate)) return fields.get(candidate);
    const cut = Math.max(candidate.lastIndexOf("."), candidate.lastIndexOf("["));
    if (cut <= 0) break;
    candidate = candidate.slice(0, cut);
  }
  return null;
}

function splitList(text) {
  return String(text || "")
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean);
}

function numberOr(text, fallback) {
  return text === "" || Number.isNaN(Number(text)) ? fallback : Number(text);
}

function cleanStep(step) {
  const out = {};
  for (const [key, value] of Object.entries(step)) {
    if (key === "agent") continue;
    if (value === null || value === undefined) continue;
    if (key === "depends_on" && Array.isArray(value) && !value.length) continue;
    out[key] = value;
  }
  return out;
}
