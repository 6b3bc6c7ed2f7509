// The console shell: sign in, workspace choice, hash routing between views.
import { ApiError, credentialKind, get, session } from "./api.js";
import { clear, field, h, toast } from "./ui.js";
import * as executionView from "./views/execution.js";
import * as keysView from "./views/keys.js";
import * as kitchenView from "./views/kitchen.js";
import * as marketplaceView from "./views/marketplace.js";
import * as qualityView from "./views/quality.js";
import * as recipeView from "./views/recipe.js";
import * as recipesView from "./views/recipes.js";
import * as editorView from "./views/editor.js";
import * as runView from "./views/run.js";

const ROUTES = [
  [/^#\/recipes\/?$/, recipesView.render, "recipes"],
  [/^#\/recipes\/new$/, editorView.renderCreate, "recipes"],
  [/^#\/recipes\/([^/]+)\/edit$/, editorView.renderEdit, "recipes"],
  [/^#\/recipes\/([^/]+)\/run$/, runView.render, "recipes"],
  [/^#\/recipes\/([^/]+)\/quality$/, qualityView.render, "recipes"],
  [/^#\/recipes\/([^/]+)$/, recipeView.render, "recipes"],
  [/^#\/kitchen$/, kitchenView.render, "kitchen"],
  [/^#\/executions\/([^/]+)\/([^/]+)$/, executionView.render, "kitchen"],
  [/^#\/marketplace$/, marketplaceView.render, "marketplace"],
  [/^#\/keys$/, keysView.render, "keys"],
];

const view = document.getElementById("view");
let current = null; // {controller, cleanup}

function stopCurrent() {
  if (!current) return;
  current.controller.abort();
  if (typeof current.cleanup === "function") current.cleanup();
  current = null;
}

async function route() {
  stopCurrent();
  if (!session.credential || !session.identity) {
    renderSignIn();
    return;
  }
  const hash = window.location.hash || "#/recipes";
  const found = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!found) {
    window.location.hash = "#/recipes";
    return;
  }
  const [pattern, render, nav] = found;
  const params = hash.match(pattern).slice(1).map(decodeURIComponent);
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const controller = new AbortController();
  current = { controller, cleanup: null };
  clear(view);
  try {
    current.cleanup = await render(view, params, { signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted || (error && error.name === "AbortError")) return;
    showFailure(error);
  }
  view.focus({ preventScroll: true });
}

function showFailure(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut("Your credential is no longer accepted; sign in again.");
    return;
  }
  clear(view).append(
    h(
      "div",
      { class: "panel error-panel", role: "alert" },
      h("h1", { text: "Something went wrong" }),
      h("p", { text: error instanceof ApiError ? `${error.status} ${error.code}: ${error.message}` : String(error) }),
    ),
  );
}

function renderSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const credential = h("textarea", {
    rows: 3,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "sous_… or eyJ…",
  });
  const credentialField = field("API key or JWT", credential, {
    hint: "make up prints both. The credential stays in this browser tab only.",
  });
  const form = h(
    "form",
    { class: "panel signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", text: "Sign in to Sous" }),
    message ? h("p", { class: "notice", role: "alert", text: message }) : null,
    credentialField,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = credential.value.trim();
    const kind = credentialKind(text);
    if (!kind) {
      credentialField.showError("Paste an API key (sous_…) or a JWT (three dot-separated parts).");
      credential.focus();
      return;
    }
    session.credential = text;
    session.kind = kind;
    session.workspace = "";
    try {
      await establish();
    } catch (error) {
      session.clear();
      credentialField.showError(
        error instanceof ApiError ? `Not accepted: ${error.message}` : `Could not reach the gateway: ${error}`,
      );
      credential.focus();
      return;
    }
    if (!window.location.hash || window.location.hash === "#/signin") window.location.hash = "#/recipes";
    else route();
  });
  clear(view).append(form);
  credential.focus();
}

// Who the credential is; then its roles and scopes in the chosen workspace (they may differ per workspace).
async function establish() {
  const saved = session.workspace;
  session.workspace = "";
  const identity = await get("/api/session");
  const allowed = identity.workspaces || [];
  session.workspace = allowed.includes(saved) ? saved : allowed.includes("default") ? "default" : allowed[0] || "";
  session.identity = identity.workspace === session.workspace ? identity : await get("/api/session");
  session.save();
  renderChrome();
}

function renderChrome() {
  const identity = session.identity;
  const nav = document.getElementById("nav");
  nav.hidden = false;
  for (const link of nav.querySelectorAll("[data-needs-scope]")) {
    link.hidden = !session.has(link.dataset.needsScope);
  }
  const who = document.getElementById("who");
  who.hidden = false;
  const choose = document.getElementById("workspace");
  clear(choose);
  for (const workspace of identity.workspaces) {
    const option = h("option", { value: workspace, text: workspace });
    option.selected = workspace === session.workspace;
    choose.append(option);
  }
  choose.disabled = identity.workspaces.length < 2;
  const roles = identity.roles.length ? ` (${identity.roles.join(", ")})` : "";
  document.getElementById("identity").textContent =
    `${identity.user_id}${roles} · ${identity.auth_type === "jwt" ? "JWT" : "API key"}`;
}

function signOut(message) {
  stopCurrent();
  session.clear();
  renderSignIn(message);
}

document.getElementById("workspace").addEventListener("change", async (event) => {
  session.workspace = event.target.value;
  session.save();
  stopCurrent();
  try {
    await establish();
  } catch (error) {
    showFailure(error);
    return;
  }
  toast(`Workspace: ${session.workspace}`);
  route();
});
document.getElementById("sign-out").addEventListener("click", () => {
  signOut("Signed out.");
});
window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason && event.reason.name === "AbortError") event.preventDefault();
});

async function start() {
  if (session.load()) {
    try {
      await establish();
    } catch (_error) {
      session.clear();
      renderSignIn("Your saved credential is no longer accepted; sign in again.");
      return;
    }
  }
  route();
}

start();
