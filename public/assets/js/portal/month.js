// This month: spend against the cap (a meter), what is left, top-ups and included credit,
// spend per day (the admin screen's chart) and per key.

import { redrawOnResize, spendChart } from "../chart.js";
import { $, fieldValue, fmtCents, fmtInt, h, revokedCell, terms, thisMonth } from "../dom.js";
import { PagedTable } from "../table.js";
import { run } from "../ui.js";
import { fetchSummary, onSummary } from "./account.js";
import { keyCell } from "./ui.js";

const NANOS_PER_CENT = 10_000_000;
const form = $("#month-load");
const status = $("#month-status");
let keysTable;
let shown = null; // the summary on screen

const month = () => fieldValue(form, "month") || thisMonth();

function percent(part, whole) {
  if (!whole) return part > 0 ? "over the cap" : "0 %";
  return `${(Math.floor((part / whole) * 1000) / 10).toFixed(1)} %`;
}

/** A native <meter> (read out by screen readers as a value in a range) with the sentence beside it. */
function renderMeter(t) {
  const cap = Math.max(0, Number(t.cap_cents) || 0);
  const spent = Math.max(0, Number(t.spent_cents) || 0);
  const meter = h("meter", {
    id: "month-meter-bar",
    min: 0,
    max: cap || 1,
    value: Math.min(spent, cap || 1),
    low: Math.round(cap * 0.8),
    high: Math.round(cap * 0.95),
    optimum: 0,
    "aria-labelledby": "month-meter-text",
  });
  const text = h(
    "p",
    { id: "month-meter-text", class: "meter-text" },
    h("strong", {}, fmtCents(spent)),
    ` of ${fmtCents(cap)} spent (${percent(spent, cap)})`,
    h("span", { class: "muted" }, ` · ${fmtCents(t.remaining_cents)} left`),
  );
  $("#month-meter").replaceChildren(text, meter);
}

function renderTotals(t) {
  const items = [
    ["Spent", fmtCents(t.spent_cents)],
    ["Remaining", fmtCents(t.remaining_cents)],
    ["Cap this month", fmtCents(t.cap_cents)],
    ["Base cap", fmtCents(t.base_cap_cents)],
    ["Top-ups", fmtCents(t.topup_cents)],
    ["In flight", fmtCents(t.reserved_cents)],
    ["Included credit", fmtCents(t.included_credit_cents ?? 0)],
    ["Calls", fmtInt(t.calls)],
    ["Tokens in / out", `${fmtInt(t.input_tokens)} / ${fmtInt(t.output_tokens)}`],
  ];
  $("#month-totals").replaceChildren(...terms(items));
}

function renderPlan(customer) {
  const parts = [`Plan: ${customer.plan || "—"}.`];
  if (customer.prepaid) parts.push("Prepaid.");
  parts.push(customer.stripe_topups ? "Card top-ups are on (see Top up)." : "Card top-ups are not part of your plan.");
  $("#month-plan").textContent = parts.join(" ");
}

/** The chart reads exact nanos; a summary that only has cents still draws. */
function chartDays(days) {
  return (days || []).map((day) => ({
    ...day,
    sell_nanos: day.sell_nanos ?? Number(day.sell_cents || 0) * NANOS_PER_CENT,
  }));
}

function drawChart() {
  if (!shown) return;
  const chart = $("#month-chart");
  if (!chart.clientWidth) return; // hidden: drawn when the panel is shown
  chart.replaceChildren(spendChart(shown.month, chartDays(shown.days), chart.clientWidth));
}

function render(item) {
  shown = item;
  renderMeter(item.totals);
  renderTotals(item.totals);
  renderPlan(item.customer || {});
  keysTable.setItems(item.keys || []);
  drawChart();
}

async function load() {
  await run({ button: $("button[type=submit]", form), status, form, busy: "Loading the month…" }, () => fetchSummary(month()));
}

export default {
  name: "month",
  init() {
    keysTable = new PagedTable($("#month-keys"), {
      columns: [
        (row) => keyCell(row.api_key_id, row.key_last4, row.label),
        (row) => row.kind || "",
        (row) => revokedCell(row.revoked_at),
        (row) => h("td", { class: "num" }, fmtInt(row.calls)),
        (row) => h("td", { class: "num" }, fmtInt(row.tokens)),
        (row) => h("td", { class: "num" }, fmtCents(row.spent_cents)),
      ],
      rowClass: (row) => (row.revoked_at ? "revoked" : ""),
      empty: "No calls this month.",
      idle: "Loading…",
    });
    // Whoever fetched the month (this panel, the top-up watcher, sign-in), show it if it is ours.
    onSummary((item) => {
      if (item.month === month()) render(item);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    redrawOnResize(drawChart);
  },
  async show() {
    if (!shown || shown.month !== month()) await load();
    else drawChart(); // the panel may have been hidden (no width) when the data came
  },
  reset() {
    shown = null;
    form.elements.namedItem("month").value = thisMonth();
    keysTable.reset();
    $("#month-meter").replaceChildren();
    $("#month-totals").replaceChildren();
    $("#month-plan").textContent = "";
    $("#month-chart").replaceChildren();
  },
};
