// Recipes: search, sort and filter the workspace's recipes.
import { get, session } from "../api.js";
import { badge, clear, debounce, field, fmtScore, h, heading, input, select, table } from "../ui.js";

const PAGE = 20;
const state = { search: "", sort_by: "popularity", visibility: "true", featured: false, tag: "", skip: 0 };

export async function render(root, _params, { signal }) {
  const search = input({ type: "search", value: state.search, placeholder: "name, description, tag…" });
  const sort = select(
    [
      ["popularity", "Popularity"],
      ["created_at", "Newest"],
      ["use_count", "Most used"],
      ["average_rating", "Rating"],
      ["name", "Name (A–Z)"],
    ],
    state.sort_by,
  );
  const visibility = select(
    [
      ["true", "Public"],
      ["false", "Private"],
    ],
    state.visibility,
  );
  const featured = h("input", { type: "checkbox" });
  featured.checked = state.featured;
  const tag = select([["", "Any tag"]], state.tag);
  const results = h("div", { "aria-live": "polite" });
  const pager = h("div", { class: "pager" });

  const newLink = session.has("recipes:write")
    ? h("a", { class: "button primary", href: "#/recipes/new" }, "New recipe")
    : null;
  root.append(
    heading("Recipes", newLink),
    h(
      "form",
      { class: "filters", role: "search", onsubmit: (event) => event.preventDefault() },
      field("Search", search),
      field("Sort by", sort),
      field("Visibility", visibility),
      field("Tag", tag),
      h("div", { class: "field checkbox" }, featured, h("label", { for: (featured.id = "featured-only") }, "Featured only")),
    ),
    results,
    pager,
  );

  get("/api/workflow-recipes/categories/list", {}, signal)
    .then((data) => {
      for (const category of data.categories || []) {
        const option = h("option", { value: category.name, text: `${category.name} (${category.count})` });
        option.selected = category.name === state.tag;
        tag.append(option);
      }
    })
    .catch(() => {});

  async function load() {
    const query = {
      search: state.search,
      sort_by: state.sort_by,
      is_public: state.visibility,
      is_featured: state.featured ? "true" : "",
      skip: state.skip,
      limit: state.tag ? 100 : PAGE,
    };
    const page = await get("/api/workflow-recipes", query, signal);
    let items = page.items;
    if (state.tag) items = items.filter((recipe) => (recipe.tags || []).includes(state.tag));
    clear(results);
    if (!items.length) {
      results.append(h("p", { class: "empty", text: "No recipe matches." }));
    } else {
      results.append(
        table(
          ["Name", "Id", "Tags", "Steps", "Quality", "Uses", ""],
          items.map((recipe) =>
            h(
              "tr",
              {},
              h(
                "td",
                {},
                h("a", { href: `#/recipes/${encodeURIComponent(recipe.template_id)}` }, recipe.name),
                recipe.is_system ? badge("system") : null,
                recipe.is_featured ? badge("featured") : null,
              ),
              h("td", {}, h("code", { text: recipe.template_id })),
              h("td", {}, (recipe.tags || []).map((t) => badge(t, "tag"))),
              h("td", { text: String((recipe.steps || []).length) }),
              h("td", { text: fmtScore(recipe.quality_score) }),
              h("td", { text: String(recipe.use_count) }),
              h(
                "td",
                {},
                session.has("executions:run")
                  ? h(
                      "a",
                      {
                        class: "button small",
                        href: `#/recipes/${encodeURIComponent(recipe.template_id)}/run`,
                        "aria-label": `Run ${recipe.name}`,
                      },
                      "Run",
                    )
                  : null,
              ),
            ),
          ),
          `${page.total} recipe${page.total === 1 ? "" : "s"}`,
        ),
      );
    }
    clear(pager);
    if (!state.tag && page.total > PAGE) {
      const prev = h("button", { type: "button", class: "secondary", disabled: state.skip === 0 }, "Previous");
      const next = h("button", { type: "button", class: "secondary", disabled: state.skip + PAGE >= page.total }, "Next");
      prev.addEventListener("click", () => {
        state.skip = Math.max(0, state.skip - PAGE);
        load();
      });
      next.addEventListener("click", () => {
        state.skip += PAGE;
        load();
      });
      pager.append(prev, h("span", { text: `${state.skip + 1}–${Math.min(state.skip + PAGE, page.total)} of ${page.total}` }), next);
    }
  }

  const reload = () => {
    state.skip = 0;
    load().catch((error) => {
      if (error.name !== "AbortError") results.replaceChildren(h("p", { class: "field-error", text: error.message }));
    });
  };
  search.addEventListener(
    "input",
    debounce(() => {
      state.search = search.value.trim();
      reload();
    }, 250),
  );
  sort.addEventListener("change", () => {
    state.sort_by = sort.value;
    reload();
  });
  visibility.addEventListener("change", () => {
    state.visibility = visibility.value;
    reload();
  });
  featured.addEventListener("change", () => {
    state.featured = featured.checked;
    reload();
  });
  tag.addEventListener("change", () => {
    state.tag = tag.value;
    reload();
  });
  await load();
}
