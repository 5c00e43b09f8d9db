// Usage: every metered call of the month, filtered by key, provider and model, page by
// page; the same filters download as CSV (fetched with the session header, saved as a file).

import { centsLabel } from "../chart.js";
import { $, fieldValue, fmtBytes, fmtInt, h, intValue, thisMonth, timeCell } from "../dom.js";
import { PagedTable } from "../table.js";
import { run, setStatus } from "../ui.js";
import { api, download } from "./api.js";
import { accountKeys, fillKeySelect, keyCell } from "./ui.js";

const NANOS_PER_CENT = 10_000_000;
const form = $("#usage-load");
const status = $("#usage-status");
let table;
let loadedFor = null;
let keysById = new Map();

const query = () => ({
  month: fieldValue(form, "month") || thisMonth(),
  api_key_id: intValue(form, "api_key_id"),
  provider: fieldValue(form, "provider"),
  model: fieldValue(form, "model"),
});

function keyOf(row) {
  const key = keysById.get(Number(row.api_key_id)) || {};
  return keyCell(row.api_key_id, key.key_last4, key.label);
}

/** The exact charge (from the sell nanos): a small call is not "$0.00"; invoices round once. */
function chargeCell(row) {
  const exact = row.sell_nanos !== undefined && row.sell_nanos !== null ? Number(row.sell_nanos) / NANOS_PER_CENT : Number(row.sell_cents);
  const mark = row.estimated ? h("span", { class: "sub", title: `estimated: ${row.outcome}` }, `estimated (${row.outcome})`) : null;
  return h("td", { class: "num nowrap", title: `${exact} cents exactly` }, centsLabel(exact), mark);
}

/** The model, and how the call was held to the account's budget: a stream stopped when the
 * month's cap (or a revoked key) stopped its lease, or max_tokens lowered to what was left. */
function modelCell(row) {
  const marks = [];
  if (row.outcome === "stopped") marks.push(h("span", { class: "sub", title: "The stream was stopped before its end" }, `stopped (${row.stopped_code || "refused"})`));
  if (row.clamped_to !== null && row.clamped_to !== undefined) {
    marks.push(h("span", { class: "sub", title: "max_tokens was lowered to what the month's remaining budget afforded" }, `max_tokens clamped to ${fmtInt(row.clamped_to)}`));
  }
  return h("td", { class: "wrap" }, row.model, ...marks);
}

function appCell(row) {
  const app = [row.app, row.build].filter(Boolean).join(" ");
  return h("td", { class: "wrap" }, app || "", row.install_id ? h("span", { class: "sub mono" }, row.install_id) : null);
}

function requestCell(row) {
  const took = row.duration_ms !== null && row.duration_ms !== undefined ? `${fmtInt(row.duration_ms)} ms` : "";
  return h("td", { class: "clip mono", title: row.request_id || "" }, row.request_id || "", took ? h("span", { class: "sub" }, took) : null);
}

async function loadKeys() {
  try {
    await fillKeySelect(form.elements.namedItem("api_key_id"));
    keysById = new Map((await accountKeys()).map((key) => [Number(key.id), key]));
  } catch {
    /* the list still loads; keys then show by id only */
  }
}

async function load() {
  await loadKeys();
  loadedFor = JSON.stringify(query());
  setStatus(status, "");
  await table.reload();
}

async function downloadCsv(button) {
  const q = query();
  await run(
    { button, status, busy: "Preparing the CSV…", success: (r) => `Saved ${r.filename} (${fmtBytes(r.size)}).` },
    () => download("customer-usage", { ...q, format: "csv" }, { fallbackName: `kaixu-usage-${q.month}.csv` }),
  );
}

export default {
  name: "usage",
  init() {
    table = new PagedTable($("#usage-table"), {
      columns: [
        (row) => timeCell(row.created_at, { seconds: true, stack: true }),
        keyOf,
        (row) => row.provider,
        modelCell,
        (row) => h("td", { class: "num" }, fmtInt(row.input_tokens)),
        (row) => h("td", { class: "num" }, fmtInt(row.output_tokens)),
        chargeCell,
        appCell,
        requestCell,
      ],
      fetchPage: (cursor) => api("customer-usage", { query: { ...query(), limit: 50, cursor } }),
      empty: "No calls match.",
      idle: "Loading…",
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    $("[data-usage-csv]", form).addEventListener("click", (event) => downloadCsv(event.currentTarget));
  },
  async show() {
    if (loadedFor !== JSON.stringify(query())) await load();
  },
  reset() {
    loadedFor = null;
    keysById = new Map();
    form.reset();
    form.elements.namedItem("month").value = thisMonth();
    table.reset();
  },
};
