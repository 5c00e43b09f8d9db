// Audit: who did what to which thing (admin-audit), newest first, filtered by actor, action,
// target and a start time, paged with the API's cursor ("More"). Read-only: the log is
// written by the actions themselves, in the same transaction as the change.

import { api } from "../api.js";
import { $, fieldValue, h, timeCell } from "../dom.js";
import { PagedTable } from "../table.js";
import { setStatus } from "../ui.js";

const form = $("#audit-filters");
const status = $("#audit-status");
let table;
let loaded = false;

/** The `since` filter as an ISO time: the field is local time, the API reads a zone or UTC. */
function sinceValue() {
  const raw = fieldValue(form, "since");
  if (!raw) return undefined;
  const at = new Date(raw);
  return Number.isNaN(at.getTime()) ? raw : at.toISOString(); // an unreadable value: the server names it
}

function filters() {
  return {
    actor: fieldValue(form, "actor") || undefined,
    action: fieldValue(form, "action") || undefined,
    target: fieldValue(form, "target") || undefined,
    since: sinceValue(),
  };
}

/** Details as `key: value` pairs, nested values as compact JSON. */
function detailsCell(details) {
  const entries = Object.entries(details || {});
  const text = entries.map(([key, value]) => `${key}: ${typeof value === "object" && value !== null ? JSON.stringify(value) : value}`);
  return h("td", { class: "wrap small audit-details" }, text.join("; "));
}

/** A cell whose value, clicked, becomes that filter (e.g. everything done to one target). */
function filterCell(name, value, mono = false) {
  if (!value) return h("td", {}, "");
  const link = h("button", { type: "button", class: "link", title: `Show only ${name} ${value}` }, value);
  link.addEventListener("click", () => {
    form.elements.namedItem(name).value = value;
    reload();
  });
  return h("td", { class: mono ? "mono audit-value" : "audit-value" }, link);
}

async function reload() {
  loaded = true;
  setStatus(status, "");
  await table.reload();
}

export default {
  name: "audit",
  init() {
    table = new PagedTable($("#audit-table"), {
      columns: [
        (row) => timeCell(row.created_at, { seconds: true }),
        (row) => filterCell("actor", row.actor),
        (row) => filterCell("action", row.action, true),
        (row) => filterCell("target", row.target, true),
        (row) => detailsCell(row.details),
      ],
      fetchPage: (cursor) => api("admin-audit", { query: { ...filters(), limit: 50, cursor: cursor || undefined } }),
      empty: "No audit events match these filters.",
      idle: "Loading the audit log…",
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      reload();
    });
  },
  async show() {
    if (!loaded) await reload();
  },
  reset() {
    loaded = false;
    form.reset();
    table.reset();
    setStatus(status, "");
  },
};
