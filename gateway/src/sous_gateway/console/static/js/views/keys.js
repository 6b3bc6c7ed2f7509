// API keys of the workspace (admins): create (the key is shown once), list, revoke.
import { ApiError, del, get, post, session } from "../api.js";
import { badge, button, clear, field, fmtTime, h, heading, input, pre, table, toast } from "../ui.js";

export async function render(root, _params, { signal }) {
  const identity = session.identity;
  const list = h("div", { "aria-live": "polite" });
  const created = h("div", { "aria-live": "polite" });
  const name = input({ required: true, placeholder: "e.g. CI pipeline" });
  const nameField = field("Name", name);
  const days = input({ type: "number", min: 1, max: 3650, placeholder: "never" });
  const scopeBoxes = identity.scopes.map((scope) => {
    const box = h("input", { type: "checkbox", value: scope, id: `scope-${scope.replace(":", "-")}` });
    box.checked = !["keys:admin", "marketplace:moderate"].includes(scope);
    return h("div", { class: "field checkbox" }, box, h("label", { for: box.id, text: scope }));
  });
  const form = h(
    "form",
    { class: "panel", "aria-label": "Create an API key" },
    h("div", { class: "grid" }, nameField, field("Expires in days", days)),
    h("fieldset", { class: "scopes" }, h("legend", { text: "Scopes" }), scopeBoxes),
    h("button", { type: "submit", class: "primary" }, "Create key"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    nameField.showError("");
    const scopes = [...form.querySelectorAll(".scopes input:checked")].map((box) => box.value);
    try {
      const key = await post("/api/api-keys", { name: name.value.trim(), scopes, ...(days.value ? { expires_in_days: Number(days.value) } : {}) });
      clear(created).append(
        h("div", { class: "panel notice" }, h("p", { text: `Key ${key.name} created. Copy it now: it is shown only once.` }), pre(key.key)),
      );
      name.value = "";
      await load();
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) nameField.showError(Object.entries(error.fields).map(([f, m]) => `${f}: ${m}`).join("; "));
      else toast(error.message, "error");
    }
  });
  root.append(heading("API keys"), form, created, h("h2", { text: "Keys of this workspace" }), list);

  async function load() {
    const page = await get("/api/api-keys", {}, signal);
    clear(list).append(
      table(
        ["Name", "Prefix", "Scopes", "Created", "Last used", "Expires", ""],
        page.items.map((key) =>
          h(
            "tr",
            {},
            h("td", { text: key.name }),
            h("td", {}, h("code", { text: key.prefix })),
            h("td", { text: key.scopes.join(", ") }),
            h("td", { text: `${fmtTime(key.created_at)} by ${key.created_by}` }),
            h("td", { text: fmtTime(key.last_used_at) }),
            h("td", { text: fmtTime(key.expires_at) }),
            h(
              "td",
              {},
              key.revoked_at
                ? badge("revoked")
                : button("Revoke", async () => {
                    if (!window.confirm(`Revoke ${key.name}? Requests with it fail at once.`)) return;
                    try {
                      await del(`/api/api-keys/${encodeURIComponent(key.id)}`);
                      toast("Key revoked");
                      await load();
                    } catch (error) {
                      toast(error.message, "error");
                    }
                  }, { class: "danger small", "aria-label": `Revoke ${key.name}` }),
            ),
          ),
        ),
        `${page.total} key${page.total === 1 ? "" : "s"}`,
      ),
    );
  }
  await load();
}
