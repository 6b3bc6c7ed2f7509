// Run a recipe: an inputs form generated from the recipe's `inputs` schema.
import { ApiError, api, get } from "../api.js";
import { field, h, heading, input, select } from "../ui.js";

const NUMBER = new Set(["number", "float", "integer", "int"]);
const BOOLEAN = new Set(["boolean", "bool"]);
const JSON_TYPES = new Set(["object", "dict", "array", "list", "json"]);

export async function render(root, [templateId], { signal }) {
  const recipe = await get(`/api/workflow-recipes/${encodeURIComponent(templateId)}`, {}, signal);
  const specs = Object.entries(recipe.inputs || {});
  const controls = new Map(); // name -> {read(), wrapper}
  const formError = h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
  const form = h("form", { class: "panel", novalidate: true, "aria-label": `Run ${recipe.name}` }, formError);

  for (const [name, spec] of specs) {
    const type = String((spec && spec.type) || "string").toLowerCase();
    const label = `${name}${spec && spec.required ? " (required)" : ""}`;
    const hint = [spec && spec.description, `type ${type}`].filter(Boolean).join(" · ");
    let control;
    let read;
    if (BOOLEAN.has(type)) {
      control = select([["", "—"], ["true", "true"], ["false", "false"]], spec.default === undefined || spec.default === null ? "" : String(spec.default));
      read = () => (control.value === "" ? undefined : control.value === "true");
    } else if (NUMBER.has(type)) {
      control = input({ type: "number", step: type.startsWith("int") ? 1 : "any", value: spec.default ?? "" });
      read = () => (control.value === "" ? undefined : Number(control.value));
    } else if (JSON_TYPES.has(type)) {
      control = h("textarea", { rows: 3, class: "mono", spellcheck: "false" });
      control.value = spec.default === undefined || spec.default === null ? "" : JSON.stringify(spec.default, null, 2);
      read = () => (control.value.trim() === "" ? undefined : JSON.parse(control.value));
    } else {
      control = input({ value: spec.default ?? "" });
      read = () => (control.value === "" ? undefined : control.value);
    }
    if (spec && spec.required) control.setAttribute("aria-required", "true");
    control.name = name;
    const wrapper = field(label, control, { hint, name: `input_data.${name}` });
    controls.set(name, { read, wrapper, control });
    form.append(wrapper);
  }
  if (!specs.length) form.append(h("p", { class: "muted", text: "This recipe takes no inputs." }));
  const submit = h("button", { type: "submit", class: "primary" }, "Start run");
  form.append(h("div", { class: "actions" }, submit, h("a", { class: "button secondary", href: `#/recipes/${encodeURIComponent(templateId)}` }, "Back")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.hidden = true;
    formError.replaceChildren();
    for (const { wrapper } of controls.values()) wrapper.showError("");
    const inputData = {};
    for (const [name, { read, wrapper, control }] of controls) {
      try {
        const value = read();
        if (value !== undefined) inputData[name] = value;
      } catch (parseError) {
        wrapper.showError(`Not valid JSON: ${parseError.message}`);
        control.focus();
        return;
      }
    }
    submit.disabled = true;
    try {
      const started = await startRun(templateId, inputData, formError);
      window.location.hash = `#/executions/${encodeURIComponent(templateId)}/${encodeURIComponent(started.recipe_execution_id)}`;
    } catch (error) {
      let placed = false;
      if (error instanceof ApiError && error.status === 422) {
        for (const [path, message] of Object.entries(error.fields)) {
          const name = path.replace(/^input_data\./, "");
          if (controls.has(name)) {
            controls.get(name).wrapper.showError(message);
            if (!placed) controls.get(name).control.focus();
            placed = true;
          }
        }
      }
      if (!placed) {
        formError.hidden = false;
        const retry = error instanceof ApiError && error.status === 429 ? " Too many runs at once: try again in a moment." : "";
        formError.append(h("p", { text: `${error.message}${retry}` }));
        formError.focus();
      }
    } finally {
      submit.disabled = false;
    }
  });

  root.append(heading(`Run ${recipe.name}`), h("p", { class: "lead", text: recipe.description }), form);
  const first = form.querySelector("input, select, textarea");
  (first || submit).focus();
}

// A recipe created a moment ago reaches the executor through the event stream: its first 404s are retried
// for a short while (the recipe itself was just read from the catalog, so it exists). Every attempt of one
// submission carries the same Idempotency-Key, so an answer lost to the network is asked again without
// starting (and paying for) a second run.
const LOST_ANSWER = new Set([502, 503, 504]);

// crypto.randomUUID needs a secure context; a console served over plain HTTP still has getRandomValues.
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function startRun(templateId, inputData, notice) {
  const path = `/api/workflow-recipes/${encodeURIComponent(templateId)}/execute`;
  const headers = { "Idempotency-Key": `sous-console-${randomKey()}` };
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      return await api("POST", path, { body: { input_data: inputData }, headers });
    } catch (error) {
      const lost = !(error instanceof ApiError) || LOST_ANSWER.has(error.status);
      const unknownYet = error instanceof ApiError && error.status === 404;
      if (!(lost || unknownYet) || Date.now() > deadline) throw error;
      notice.hidden = false;
      const text = unknownYet
        ? "The executor is still learning this new recipe; starting in a moment…"
        : "No answer from the server yet; asking again (the run starts once)…";
      notice.replaceChildren(h("p", { text }));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
