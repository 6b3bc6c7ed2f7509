// Quality: the score trend (inline SVG), the five dimensions of the latest assessment, and suggestions.
import { ApiError, get } from "../api.js";
import { fmtScore, fmtTime, h, heading, svg, table } from "../ui.js";

const DIMENSIONS = ["completeness", "accuracy", "efficiency", "reliability", "cost"];

export async function render(root, [templateId], { signal }) {
  const base = `/api/workflow-recipes/${encodeURIComponent(templateId)}`;
  const [recipe, history, suggestions] = await Promise.all([
    get(base, {}, signal),
    get(`${base}/quality/history`, {}, signal).catch(notFoundAs({ points: [] })),
    get(`${base}/suggestions`, {}, signal).catch(notFoundAs(null)),
  ]);
  const points = history.points || [];
  root.append(
    heading(`Quality of ${recipe.name}`),
    h("p", {}, h("a", { href: `#/recipes/${encodeURIComponent(templateId)}` }, "← Recipe")),
    h("p", { class: "lead", text: `Rolling score ${fmtScore(recipe.quality_score)} over ${points.length} assessed run${points.length === 1 ? "" : "s"}.` }),
  );
  if (!points.length) {
    root.append(h("p", { class: "empty", text: "No assessment yet: runs are assessed when they finish (with auto-learning)." }));
  } else {
    root.append(h("h2", { text: "Score trend" }), trendChart(points));
    const latest = points[points.length - 1];
    root.append(
      h("h2", { text: `Latest assessment: grade ${latest.grade}` }),
      h(
        "ul",
        { class: "dimensions" },
        DIMENSIONS.map((name) => {
          const value = Number((latest.breakdown || {})[name] ?? 0);
          return h(
            "li",
            {},
            h("span", { class: "dim-name", text: name }),
            h("meter", { min: "0", max: "1", low: "0.4", high: "0.75", optimum: "1", value: String(value), "aria-label": `${name} ${value.toFixed(2)}` }),
            h("span", { class: "dim-value", text: value.toFixed(2) }),
          );
        }),
      ),
    );
  }
  root.append(h("h2", { text: "Suggestions" }));
  const list = (suggestions && suggestions.suggestions) || [];
  if (!list.length) root.append(h("p", { class: "muted", text: "No suggestion yet." }));
  else {
    root.append(
      h(
        "ul",
        { class: "suggestions" },
        list.map((item) =>
          h(
            "li",
            {},
            h("strong", { text: item.type || "suggestion" }),
            item.step_id ? h("code", { text: ` ${item.step_id}` }) : null,
            item.priority ? h("span", { class: `badge ${item.priority}`, text: item.priority }) : null,
            h("p", { text: item.description || item.message || item.suggestion || JSON.stringify(item) }),
          ),
        ),
      ),
    );
  }
  const patterns = (suggestions && suggestions.patterns) || [];
  if (patterns.length) {
    root.append(
      h("h2", { text: "Patterns" }),
      table(["Type", "Step", "Detail"], patterns.map((p) => h("tr", {}, h("td", { text: p.type }), h("td", { text: p.step_id || "–" }), h("td", { text: p.description || p.message || JSON.stringify(p) })))),
    );
  }
  if (suggestions && suggestions.last_analyzed_at) root.append(h("p", { class: "muted", text: `Last analysed ${fmtTime(suggestions.last_analyzed_at)} · ${suggestions.analysis_count} analyses` }));
}

function notFoundAs(value) {
  return (error) => {
    if (error instanceof ApiError && error.status === 404) return value;
    throw error;
  };
}

// Each assessment's score (dots) and the rolling score (line), 0..1.
export function trendChart(points) {
  const width = 640;
  const height = 220;
  const pad = { left: 40, right: 12, top: 12, bottom: 28 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const x = (index) => pad.left + (points.length === 1 ? innerW / 2 : (index / (points.length - 1)) * innerW);
  const y = (value) => pad.top + (1 - Math.max(0, Math.min(1, Number(value) || 0))) * innerH;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-labelledby": "trend-title trend-desc" });
  const latest = points[points.length - 1];
  chart.append(
    svg("title", { id: "trend-title", text: "Quality score trend" }),
    svg("desc", { id: "trend-desc", text: `${points.length} assessments; latest score ${fmtScore(latest.quality_score)}, rolling ${fmtScore(latest.rolling_score)}` }),
  );
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick), class: "grid-line" }),
      svg("text", { x: pad.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "axis", text: tick.toFixed(2) }),
    );
  }
  const line = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.rolling_score).toFixed(1)}`).join(" ");
  chart.append(svg("path", { d: line, class: "rolling", fill: "none" }));
  points.forEach((p, i) => {
    chart.append(svg("circle", { cx: x(i), cy: y(p.quality_score), r: 4, class: "score" }, svg("title", { text: `${fmtTime(p.assessed_at)}: ${fmtScore(p.quality_score)} (${p.grade})` })));
  });
  chart.append(
    svg("text", { x: pad.left, y: height - 6, class: "axis", text: "oldest" }),
    svg("text", { x: width - pad.right, y: height - 6, "text-anchor": "end", class: "axis", text: "latest · line: rolling score, dots: each run" }),
  );
  return h("figure", { class: "chart-box" }, chart);
}
