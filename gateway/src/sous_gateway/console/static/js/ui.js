// Small DOM helpers: elements are built with textContent only (never HTML from data).

let uid = 0;
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") element.textContent = value;
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

export function clear(element) {
  while (element.firstChild) element.firstChild.remove();
  return element;
}

// A labelled control: {label, control, hint, error slot}; error(message) shows a message next to it.
export function field(label, control, options = {}) {
  const id = control.id || nextId("field");
  control.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert", hidden: true });
  const hint = options.hint ? h("p", { class: "hint", id: `${id}-hint`, text: options.hint }) : null;
  const described = [hint ? `${id}-hint` : "", `${id}-error`].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  const wrapper = h(
    "div",
    { class: `field ${options.class || ""}`, dataset: { field: options.name || "" } },
    h("label", { for: id, text: label }),
    control,
    hint,
    error,
  );
  wrapper.showError = (message) => {
    error.textContent = message || "";
    error.hidden = !message;
    if (message) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  };
  return wrapper;
}

export function input(attrs = {}) {
  return h("input", { type: "text", ...attrs });
}

export function select(options, value, attrs = {}) {
  const element = h("select", attrs);
  for (const option of options) {
    const [optionValue, label] = Array.isArray(option) ? option : [option, option];
    const node = h("option", { value: optionValue, text: label });
    if (String(optionValue) === String(value)) node.selected = true;
    element.append(node);
  }
  return element;
}

export function button(label, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, label);
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}`, text: message });
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind || text}`, text });
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return "–";
  const value = Number(ms);
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60000) return `${(value / 1000).toFixed(1)} s`;
  return `${Math.floor(value / 60000)} min ${Math.round((value % 60000) / 1000)} s`;
}

export function fmtCost(usd) {
  if (usd === null || usd === undefined) return "–";
  return `$${Number(usd).toFixed(Number(usd) < 0.01 ? 6 : 4)}`;
}

export function fmtTime(text) {
  if (!text) return "–";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? String(text) : date.toLocaleString();
}

export function fmtScore(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(2);
}

export function heading(text, ...extra) {
  return h("div", { class: "page-head" }, h("h1", { text }), ...extra);
}

export function table(headers, rows, caption) {
  return h(
    "table",
    {},
    caption ? h("caption", { text: caption }) : null,
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col", text })))),
    h("tbody", {}, rows),
  );
}

export function pre(value) {
  return h("pre", { class: "code", text: typeof value === "string" ? value : JSON.stringify(value, null, 2) });
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
