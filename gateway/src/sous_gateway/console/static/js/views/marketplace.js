// Marketplace: browse and install listings, submit recipes, and the moderation queue for moderators.
import { ApiError, get, post, session } from "../api.js";
import { badge, button, clear, debounce, field, fmtScore, fmtTime, h, heading, input, select, table, toast } from "../ui.js";

// A listing's quality as the marketplace shows it: rolling score, assessed runs and the latest rolling scores.
function qualityLine(item) {
  const trend = (item.score_trend || []).map((score) => fmtScore(score)).join(" → ");
  const runs = `${item.assessed_runs ?? 0} assessed run${item.assessed_runs === 1 ? "" : "s"}`;
  return `quality ${fmtScore(item.quality_score)} over ${runs}${trend ? ` (trend ${trend})` : ""}`;
}

function standing(item) {
  if (item.flagged) return badge("flagged", "failed");
  if (item.featured) return badge("featured", "completed");
  return null;
}

export async function render(root, _params, { signal }) {
  const search = input({ type: "search", placeholder: "name or description" });
  const sort = select([["newest", "Newest"], ["installs", "Most installed"], ["quality", "Best quality"]], "newest");
  const category = input({ placeholder: "any" });
  const listings = h("div", { "aria-live": "polite" });
  const queue = h("section", { "aria-labelledby": "queue-title" });
  const mine = h("section", { "aria-labelledby": "mine-title" });
  root.append(
    heading("Marketplace"),
    h("p", { class: "muted", text: `Installs go into workspace ${session.workspace}.` }),
    h("form", { class: "filters", role: "search", onsubmit: (event) => event.preventDefault() }, field("Search", search), field("Category", category), field("Sort by", sort)),
    h("h2", { text: "Listings" }),
    listings,
    queue,
    mine,
  );

  async function loadListings() {
    const page = await get("/api/marketplace/listings", { search: search.value.trim(), category: category.value.trim(), sort_by: sort.value, limit: 50 }, signal);
    clear(listings);
    if (!page.items.length) {
      listings.append(h("p", { class: "empty", text: "No listing yet." }));
      return;
    }
    listings.append(
      h(
        "div",
        { class: "cards" },
        page.items.map((item) =>
          h(
            "article",
            { class: "card listing", dataset: { listing: item.id } },
            h("div", { class: "card-head" }, h("h3", { text: item.name }), badge(item.category || "general", "tag"), standing(item)),
            h("p", { text: item.description }),
            h("p", { class: "muted", text: `${(item.recipe.steps || []).length} steps · ${item.install_count} installs · by ${item.creator_id}` }),
            h("p", { class: "muted quality-line", text: qualityLine(item) }),
            session.has("marketplace:submit")
              ? button("Install", async () => {
                  try {
                    const result = await post(`/api/workflow-recipes/install/${encodeURIComponent(item.id)}`);
                    toast(result.message || "Installed");
                    for (const warning of result.warnings || []) toast(String(warning), "warn");
                  } catch (error) {
                    toast(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error), "error");
                  }
                }, { class: "primary small", "aria-label": `Install ${item.name}` })
              : null,
          ),
        ),
      ),
    );
  }

  async function loadQueue() {
    clear(queue);
    if (!session.has("marketplace:moderate")) return;
    const page = await get("/api/marketplace/queue", { limit: 50 }, signal);
    queue.append(h("h2", { id: "queue-title", text: `Moderation queue (${page.total})` }));
    if (!page.items.length) {
      queue.append(h("p", { class: "muted", text: "Nothing waits for a decision." }));
      return;
    }
    queue.append(
      table(
        ["Listing", "Creator", "Steps", "Quality", "Submitted", "Decision"],
        page.items.map((item) => {
          const reason = input({ placeholder: "reason (to reject)", "aria-label": `Reason to reject ${item.name}` });
          const gate = item.quality_gate || {};
          const note = item.flagged ? item.flag_reason : gate.met === false ? gate.reason : null;
          return h(
            "tr",
            { dataset: { listing: item.id } },
            h("td", {}, h("strong", { text: item.name }), standing(item), h("p", { class: "muted", text: item.description })),
            h("td", { text: item.creator_id }),
            h("td", { text: String((item.recipe.steps || []).length) }),
            h("td", {}, h("span", { text: qualityLine(item) }), note ? h("p", { class: "field-error", text: note }) : null),
            h("td", { text: fmtTime(item.submitted_at) }),
            item.flagged
              ? h("td", { text: "Approved, flagged for its quality" })
              : h(
              "td",
              {},
              h(
                "div",
                { class: "decide" },
                button("Approve", () => decide(item, "approve"), { class: "primary small", "aria-label": `Approve ${item.name}` }),
                reason,
                button("Reject", () => decide(item, "reject", reason.value.trim() || "does not meet the guidelines"), { class: "danger small", "aria-label": `Reject ${item.name}` }),
              ),
            ),
          );
        }),
      ),
    );
  }

  async function decide(item, action, reason) {
    try {
      await post(`/api/marketplace/listings/${encodeURIComponent(item.id)}/${action}`, action === "reject" ? { reason } : {});
      toast(`${item.name}: ${action === "approve" ? "approved" : "rejected"}`);
      await Promise.all([loadQueue(), loadListings()]);
    } catch (error) {
      toast(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error), "error");
    }
  }

  async function loadMine() {
    clear(mine);
    if (!session.has("marketplace:submit")) return;
    const page = await get("/api/marketplace/submissions", { limit: 50 }, signal);
    mine.append(
      h("h2", { id: "mine-title", text: "My submissions" }),
      h("p", { class: "muted", text: page.trusted ? "Trusted creator: your listings are published at once." : `${page.approved_count} of ${page.trusted_threshold} approved listings to become a trusted creator.` }),
    );
    if (page.items.length) {
      mine.append(
        table(
          ["Listing", "Status", "Submitted", "Reason"],
          page.items.map((item) => h("tr", {}, h("td", { text: item.name }), h("td", {}, badge(item.status)), h("td", { text: fmtTime(item.submitted_at) }), h("td", { text: item.rejection_reason || item.reason || "–" }))),
        ),
      );
    }
    mine.append(h("p", { class: "muted", text: "Submit a recipe from its page (Submit to marketplace)." }));
  }

  const reload = () => loadListings().catch((error) => listings.replaceChildren(h("p", { class: "field-error", text: error.message })));
  search.addEventListener("input", debounce(reload, 250));
  category.addEventListener("input", debounce(reload, 250));
  sort.addEventListener("change", reload);
  await Promise.all([loadListings(), loadQueue(), loadMine()]);
}
