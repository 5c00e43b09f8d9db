// DOM helpers. Everything the API says is rendered as text nodes: no HTML string is ever
// parsed, so a customer email or a monitor summary cannot inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function applyAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.setAttribute("class", value);
    else if (name === "text") node.textContent = String(value);
    else if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) throw new Error(`use {on: {...}} for ${name}`);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("td", {class: "num"}, "12") — an element with attributes and text/element children. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  applyAttrs(node, attrs);
  append(node, children);
  return node;
}

/** The SVG twin of h(). */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  applyAttrs(node, attrs);
  append(node, children);
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export function clear(node) {
  node.replaceChildren();
  return node;
}

// ---------------------------------------------------------------------------- formatting

const pad = (n) => String(n).padStart(2, "0");

/** "2026-02-03 14:05" in the viewer's time zone; the exact UTC time goes in a tooltip. */
export function fmtTime(iso, { seconds = false } = {}) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${base}:${pad(d.getSeconds())}` : base;
}

/** A time cell; with {stack: true} the time goes under the date (narrow columns). */
export function timeCell(iso, opts = {}) {
  const text = fmtTime(iso, opts);
  if (!opts.stack || !text) return h("td", { title: iso || "", class: "nowrap" }, text);
  const [date, time] = text.split(" ");
  return h("td", { title: iso, class: "nowrap" }, date, h("span", { class: "sub" }, time));
}

/** Active, or revoked with when (a key's state in both pages' key tables). */
export function revokedCell(revokedAt) {
  if (!revokedAt) return h("td", {}, badge("active", "ok"));
  return h("td", { title: revokedAt, class: "nowrap" }, badge("revoked", "bad"), h("span", { class: "sub" }, fmtTime(revokedAt)));
}

/** 2050 cents → "$20.50". */
export function fmtCents(cents) {
  if (cents === null || cents === undefined || cents === "") return "";
  const n = Number(cents);
  if (!Number.isFinite(n)) return String(cents);
  const sign = n < 0 ? "-" : "";
  const abs = Math.abs(n);
  return `${sign}$${Math.floor(abs / 100).toLocaleString("en-US")}.${pad(Math.round(abs % 100))}`;
}

/** Exact cents as a short number: 12.35, 0.00048 (small amounts keep two significant digits). */
export function fmtExactCents(cents) {
  const n = Number(cents);
  if (!Number.isFinite(n)) return "";
  if (n === 0 || Math.abs(n) >= 1) return String(+n.toFixed(2));
  return String(Number(n.toPrecision(2)));
}

export function fmtInt(n) {
  if (n === null || n === undefined || n === "") return "";
  const v = Number(n);
  return Number.isFinite(v) ? v.toLocaleString("en-US") : String(n);
}

export function fmtBytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return n === null || n === undefined ? "" : String(n);
  if (v < 1024) return `${v} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let size = v / 1024;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(size < 10 ? 1 : 0)} ${units[unit]}`;
}

/** [[label, value], …] as the rows of a <dl class="totals">: a <div> of <dt> and <dd> each. */
export function terms(pairs) {
  return pairs.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value)));
}

export function badge(text, tone = "") {
  return h("span", { class: `badge ${tone}`.trim() }, text);
}

export function yesNo(value, { yes = "yes", no = "no", inherit = "inherit" } = {}) {
  if (value === null || value === undefined) return badge(inherit);
  return value ? badge(yes, "ok") : badge(no);
}

export function thisMonth() {
  const d = new Date();
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
}

/** A JSON value as compact text for a table cell ("" for null). */
export function compactJson(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") {
    return Object.entries(value)
      .map(([provider, models]) => `${provider}: ${Array.isArray(models) ? models.join(", ") : models}`)
      .join("; ");
  }
  return String(value);
}

// ---------------------------------------------------------------------------- forms

/** The trimmed value of a named control, or "" when absent. */
export function fieldValue(form, name) {
  const control = form.elements.namedItem(name);
  if (!control) return "";
  return typeof control.value === "string" ? control.value.trim() : "";
}

/** A whole-number field: null when empty, NaN-safe (the server checks bounds). */
export function intValue(form, name) {
  const raw = fieldValue(form, name);
  if (raw === "") return null;
  const n = Number(raw);
  return Number.isInteger(n) ? n : raw; // a non-integer goes through so the server names the field
}

export function checkedValues(form, name) {
  return $$(`input[type="checkbox"][name="${name}"]`, form)
    .filter((box) => box.checked)
    .map((box) => box.value);
}

export function setChecked(form, name, values) {
  const wanted = new Set(values || []);
  for (const box of $$(`input[type="checkbox"][name="${name}"]`, form)) box.checked = wanted.has(box.value);
}

/** Show "2000 = $20.00" beside cents inputs that have an <output data-cents-for>. */
export function bindCentsHints(root = document) {
  for (const output of $$("output[data-cents-for]", root)) {
    const input = document.getElementById(output.dataset.centsFor);
    if (!input) continue;
    const update = () => {
      const n = Number(input.value);
      output.textContent = input.value !== "" && Number.isFinite(n) ? `= ${fmtCents(n)}` : "";
    };
    input.addEventListener("input", update);
    if (input.form) input.form.addEventListener("reset", () => setTimeout(update)); // after the reset
    update();
  }
}

/** Put this UTC month into every empty month input marked data-this-month. */
export function fillMonths(root = document) {
  for (const input of $$("input[data-this-month]", root)) if (!input.value) input.value = thisMonth();
}
