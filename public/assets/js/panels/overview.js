// Overview: the operator's month at a glance (admin-overview). Revenue is what customers
// were charged, provider cost what the providers charged the operator, margin the difference;
// every cents figure comes from the server, rounded once from its exact nanos.

import { api, download } from "../api.js";
import { redrawOnResize, spendChart } from "../chart.js";
import { $, fieldValue, fmtBytes, fmtCents, fmtExactCents, fmtInt, h, terms, thisMonth, timeCell } from "../dom.js";
import { selectCustomer } from "../state.js";
import { PagedTable } from "../table.js";
import { run, setStatus } from "../ui.js";

const form = $("#overview-load");
const status = $("#overview-status");
const csvButton = $("[data-overview-csv]", form);
const NANOS_PER_CENT = 10_000_000;
const tables = {};
let loadedMonth = null;
let lastReport = null;

const month = () => fieldValue(form, "month") || thisMonth();

/** A cents cell whose tooltip has the exact amount (sub-cent margins are real money in bulk). */
function moneyCell(cents, nanos) {
  const title = nanos === undefined ? undefined : `${fmtExactCents(Number(nanos) / NANOS_PER_CENT)} cents exactly`;
  const negative = Number(cents) < 0 || Number(nanos) < 0;
  return h("td", { class: negative ? "num warn" : "num", title }, fmtCents(cents));
}

function pctCell(pct) {
  return h("td", { class: pct !== null && pct.startsWith("-") ? "num warn" : "num" }, pct === null ? "—" : `${pct} %`);
}

function customerCell(row) {
  return h("td", {}, h("strong", {}, `#${row.customer_id}`), h("span", { class: "sub" }, row.email || ""));
}

/** The revenue, cost, margin and margin % cells of a rollup row. */
const figureColumns = [
  (row) => h("td", { class: "num" }, fmtInt(row.calls)),
  (row) => moneyCell(row.revenue_cents, row.revenue_nanos),
  (row) => moneyCell(row.cost_cents, row.cost_nanos),
  (row) => moneyCell(row.margin_cents, row.margin_nanos),
  (row) => pctCell(row.margin_pct),
];

const capColumns = [
  (row) => h("td", { class: "num" }, fmtCents(row.cap_cents)),
  (row) => h("td", { class: "num" }, row.cap_used_pct === null ? "over (no cap left)" : `${row.cap_used_pct} %`),
];

function renderTotals(report) {
  const t = report.totals;
  const items = [
    ["Revenue", fmtCents(t.revenue_cents)],
    ["Provider cost", fmtCents(t.cost_cents)],
    ["Margin", fmtCents(t.margin_cents)],
    ["Margin %", t.margin_pct === null ? "—" : `${t.margin_pct} %`],
    ["KaixuPush", fmtCents(t.push_revenue_cents)],
    ["Calls", fmtInt(t.calls)],
  ];
  $("#overview-totals").replaceChildren(...terms(items));
}

/** The chart draws the customers' charge per day: the same field the usage chart reads. */
function drawChart() {
  if (!lastReport) return;
  const chart = $("#overview-chart");
  const days = lastReport.by_day
    .filter((row) => String(row.date).startsWith(lastReport.month)) // a call settled after midnight
    .map((row) => ({ date: row.date, sell_nanos: row.revenue_nanos, calls: row.calls }));
  chart.replaceChildren(spendChart(lastReport.month, days, chart.clientWidth || 720));
}

function render(report) {
  lastReport = report;
  renderTotals(report);
  drawChart();
  $("#overview-warn-pct").textContent = `(≥ ${report.cap_warn_pct} % of cap)`;
  tables.customers.setItems(report.by_customer);
  tables.models.setItems(report.by_model);
  tables.providers.setItems(report.by_provider);
  tables.top.setItems(report.top_spenders);
  tables.nearCap.setItems(report.near_cap);
  tables.failures.setItems(report.failed_payments);
}

async function load() {
  const wanted = month();
  const report = await run(
    { button: $("button[type=submit]", form), status, form, busy: `Loading ${wanted}…` },
    () => api("admin-overview", { query: { month: wanted } }),
  );
  if (!report) return;
  loadedMonth = wanted;
  render(report.item);
}

async function downloadCsv() {
  const wanted = month();
  await run(
    {
      button: csvButton,
      status,
      form,
      busy: `Downloading the ${wanted} overview…`,
      success: (r) => `Saved ${r.filename} (${fmtBytes(r.size)}).`,
    },
    () =>
      download("admin-overview", { month: wanted, format: "csv" }, { fallbackName: `kaixu-overview-${wanted}.csv` }),
  );
}

function makeTables() {
  tables.customers = new PagedTable($("#overview-customers"), {
    columns: [
      customerCell,
      (row) => row.plan,
      ...figureColumns,
      (row) => moneyCell(row.push_revenue_cents, row.push_revenue_nanos),
    ],
    onRowClick: (row) => selectCustomer({ id: row.customer_id, email: row.email }),
    empty: "No customer was charged this month.",
    idle: "Choose a month.",
  });
  tables.models = new PagedTable($("#overview-models"), {
    columns: [(row) => row.provider, (row) => h("td", { class: "wrap" }, row.model), ...figureColumns],
    empty: "No calls this month.",
  });
  tables.providers = new PagedTable($("#overview-providers"), {
    columns: [(row) => row.provider, ...figureColumns],
    empty: "No calls this month.",
  });
  tables.top = new PagedTable($("#overview-top"), {
    columns: [customerCell, (row) => moneyCell(row.revenue_cents, row.revenue_nanos), ...capColumns],
    empty: "No revenue this month.",
  });
  tables.nearCap = new PagedTable($("#overview-near-cap"), {
    columns: [customerCell, (row) => row.plan, (row) => moneyCell(row.spent_cents, row.spent_nanos), ...capColumns],
    empty: "No customer is near its cap.",
  });
  tables.failures = new PagedTable($("#overview-failures"), {
    columns: [
      (row) => timeCell(row.created_at),
      (row) => (row.customer_id ? customerCell(row) : h("td", { class: "muted" }, "unknown")),
      (row) => h("td", { class: "num" }, row.amount_cents === null ? "—" : fmtCents(row.amount_cents)),
      (row) => h("td", { class: "wrap" }, row.reason || "—"),
      (row) => h("td", { class: "wrap" }, row.event_type, h("span", { class: "sub" }, row.event_id)),
    ],
    empty: "No failed payments this month.",
  });
}

export default {
  name: "overview",
  init() {
    $("#overview-month").max = thisMonth(); // the server refuses months still to come
    makeTables();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    csvButton.addEventListener("click", downloadCsv);
    redrawOnResize(drawChart);
  },
  async show() {
    if (loadedMonth !== month()) await load();
    else drawChart(); // the panel may have been hidden (no width) when the data came
  },
  reset() {
    loadedMonth = null;
    lastReport = null;
    for (const table of Object.values(tables)) table.reset();
    $("#overview-totals").replaceChildren();
    $("#overview-chart").replaceChildren();
    $("#overview-warn-pct").textContent = "";
    setStatus(status, "");
  },
};
