// Usage: a customer's metered calls for a month, with the month's totals and a chart of
// spend per day.

import { api } from "../api.js";
import { redrawOnResize, spendChart } from "../chart.js";
import { $, badge, fieldValue, fmtCents, fmtExactCents, fmtInt, h, intValue, terms, timeCell } from "../dom.js";
import { customerLoads } from "../state.js";
import { PagedTable } from "../table.js";
import { requireCustomerId, run } from "../ui.js";

const form = $("#usage-load");
const status = $(".status", $("#panel-usage"));
let table;
const loads = customerLoads();
let lastSummary = null;

const query = () => ({
  customer_id: intValue(form, "customer_id"),
  month: fieldValue(form, "month"),
  api_key_id: intValue(form, "api_key_id"),
});

// How a call that did not end "ok" ended, in words (a badge with text, not colour alone).
const OUTCOMES = {
  upstream_error: "provider error",
  client_disconnect: "client disconnected",
  stream_error: "stream broke",
  abandoned: "abandoned",
};

/** How the call was held to its budget: a stream stopped when its lease could not grow (the
 * refusal's code: CAP_REACHED, KEY_REVOKED...), or max_tokens clamped to what the month afforded. */
function budgetMarks(row) {
  const marks = [];
  if (row.outcome === "stopped") {
    const title = `The stream was stopped: ${row.stopped_code || "its lease was refused"}`;
    marks.push(h("span", { class: "sub", title }, badge(`stopped: ${row.stopped_code || "refused"}`, "warn")));
  }
  if (row.clamped_to !== null && row.clamped_to !== undefined) {
    const title = "max_tokens was lowered to what the month's remaining budget afforded";
    marks.push(h("span", { class: "sub", title }, badge(`clamped to ${fmtInt(row.clamped_to)} tokens`, "warn")));
  }
  return marks;
}

/** The model, and under it how the call ended when that was not "ok", or how it was held to its budget. */
function modelCell(row) {
  const ended = row.outcome && row.outcome !== "ok" && row.outcome !== "stopped" ? OUTCOMES[row.outcome] || row.outcome : null;
  const mark = ended ? h("span", { class: "sub" }, badge(`not ok: ${ended}`, "bad")) : null;
  return h("td", { class: "wrap", title: ended ? `The call ended: ${row.outcome}` : null }, row.model, mark, ...budgetMarks(row));
}

/** The exact charge in cents (from the sell nanos): a small call is not "0"; invoices round once. */
// An estimate (the provider's figures did not all arrive: a dropped stream, an abandoned
// call) is marked as such: its tokens were counted by the gateway, not reported.
function exactCents(row) {
  const exact = Number(row.sell_nanos) / 10_000_000;
  const title = `${exact} cents exactly; invoices round each total once${row.estimated ? "; estimated by the gateway" : ""}`;
  const mark = row.estimated ? h("span", { class: "sub" }, badge("estimated", "warn")) : null;
  return h("td", { class: "num", title }, fmtExactCents(exact), mark);
}

function renderTotals(summary) {
  const t = summary.totals;
  const items = [
    ["Spent", fmtCents(t.spent_cents)],
    ["Cap (with top-ups)", fmtCents(t.cap_cents)],
    ["Reserved", fmtCents(t.reserved_cents)],
    ["Calls", fmtInt(t.calls)],
    ["Tokens in / out", `${fmtInt(t.input_tokens)} / ${fmtInt(t.output_tokens)}`],
  ];
  $("#usage-totals").replaceChildren(...terms(items));
  lastSummary = summary;
  drawChart();
}

function drawChart() {
  if (!lastSummary) return;
  const chart = $("#usage-chart");
  chart.replaceChildren(spendChart(lastSummary.month, lastSummary.days || [], chart.clientWidth || 720));
}

async function load() {
  if (requireCustomerId(form, status) === null) return;
  const q = query();
  loads.loaded(q);
  const listing = table.reload();
  const summary = await run({ button: $("button[type=submit]", form), status, form, busy: "Loading the month…" }, () =>
    api("admin-usage", { query: { customer_id: q.customer_id, month: q.month, view: "summary" } }),
  );
  if (summary) renderTotals(summary.item);
  await listing;
}

export default {
  name: "usage",
  init() {
    table = new PagedTable($("#usage-table"), {
      columns: [
        (row) => timeCell(row.created_at, { seconds: true }),
        (row) => row.provider,
        modelCell,
        (row) => h("td", { class: "num" }, fmtInt(row.input_tokens)),
        (row) => h("td", { class: "num" }, fmtInt(row.output_tokens)),
        exactCents,
      ],
      rowClass: (row) =>
        [
          row.estimated ? "estimated" : "",
          row.outcome && row.outcome !== "ok" && row.outcome !== "stopped" ? "not-ok" : "",
          row.outcome === "stopped" ? "stopped" : "",
          row.clamped_to !== null && row.clamped_to !== undefined ? "clamped" : "",
        ]
          .join(" ")
          .trim()
          .replace(/\s+/g, " "),
      fetchPage: (cursor) => api("admin-usage", { query: { ...query(), limit: 50, cursor } }),
      empty: "No calls in this month.",
      idle: "Choose a customer to see its usage.",
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    redrawOnResize(drawChart);
  },
  async show() {
    const q = query();
    if (loads.wanted(q)) await load();
    else drawChart(); // the panel may have been hidden (no width) when the data came
  },
  reset() {
    loads.forget();
    lastSummary = null;
    table.reset();
    $("#usage-totals").replaceChildren();
    $("#usage-chart").replaceChildren();
  },
};
