// Invoices: the issued ones (paid and void too; drafts are the operator's), one shown with
// its statement, and the printable invoice opened in a new window to print or save as PDF.

import { $, fmtCents, fmtInt, fmtTime, h, terms, timeCell } from "../dom.js";
import { printInvoice } from "../print.js";
import { loadOnce } from "../shell.js";
import { PagedTable, staticTable } from "../table.js";
import { run, setStatus } from "../ui.js";
import { api, request } from "./api.js";
import { stateBadge } from "./ui.js";

const status = $("#invoices-status");
const detail = $("#invoice-detail");
let table;
const once = loadOnce(() => table.reload());

function number(row) {
  return row.number !== null && row.number !== undefined ? `No. ${row.number}` : `#${row.id}`;
}

function actionsCell(row) {
  const view = h("button", { type: "button", class: "small" }, "View");
  const print = h("button", { type: "button", class: "small" }, "Print / PDF");
  view.setAttribute("aria-label", `View invoice ${number(row)} of ${row.month}`);
  print.setAttribute("aria-label", `Print invoice ${number(row)} of ${row.month}`);
  view.addEventListener("click", () => showInvoice(row, view));
  print.addEventListener("click", () =>
    printInvoice({
      button: print,
      status,
      label: `${number(row)} of ${row.month}`,
      fetchHtml: () => request("customer-invoices", { query: { id: row.id, format: "html" } }),
    }),
  );
  return h("td", {}, h("div", { class: "actions" }, view, print));
}

/** The invoice as the customer reads it: what is owed, and the lines it adds up from. */
function renderInvoice(item) {
  const snapshot = item.snapshot || {};
  const t = snapshot.totals || {};
  const totals = [
    ["Amount owed", fmtCents(t.due_cents ?? item.total_cents)],
    ["Credit remaining", fmtCents(t.credit_remaining_cents ?? 0)],
    ["AI usage", fmtCents(t.usage_cents ?? t.total_cents)],
    ["KaixuPush", fmtCents(t.push_cents ?? 0)],
    ["Credits", fmtCents(t.credits_cents ?? 0)],
    ["Calls", fmtInt(t.calls)],
  ];
  const lines = (snapshot.lines || []).map((line) => [line.description || line.kind || "", fmtCents(line.cents)]);
  const usage = (snapshot.usage || []).map((line) => [
    `${line.provider} ${line.model}`,
    fmtInt(line.calls),
    fmtInt(line.input_tokens),
    fmtInt(line.output_tokens),
    fmtCents(line.sell_cents),
  ]);
  const dates = [
    item.issued_at ? `Issued ${fmtTime(item.issued_at)}.` : "",
    item.paid_at ? `Paid ${fmtTime(item.paid_at)}.` : "",
    item.voided_at ? `Voided ${fmtTime(item.voided_at)}.` : "",
  ].filter(Boolean);
  return h(
    "article",
    { class: "card invoice", "data-invoice": String(item.id) },
    h("h3", {}, `Invoice ${number(item)} · ${item.month} `, stateBadge(item.status)),
    dates.length ? h("p", { class: "small muted" }, dates.join(" ")) : null,
    h("dl", { class: "totals" }, terms(totals)),
    h("h4", {}, "Statement"),
    staticTable(["Line", "Amount"], lines, new Set([1])),
    usage.length ? h("h4", {}, "AI usage by model") : null,
    usage.length ? staticTable(["Model", "Calls", "Input", "Output", "Charge"], usage, new Set([1, 2, 3, 4])) : null,
  );
}

async function showInvoice(row, button) {
  const result = await run({ button, status, busy: `Loading invoice ${number(row)}…` }, () =>
    api("customer-invoices", { query: { id: row.id } }),
  );
  if (!result) return;
  setStatus(status, "");
  detail.replaceChildren(renderInvoice(result.item));
  detail.scrollIntoView({ block: "nearest" });
}

export default {
  name: "invoices",
  init() {
    table = new PagedTable($("#invoices-table"), {
      columns: [
        (row) => h("td", {}, h("strong", {}, number(row))),
        (row) => row.month,
        (row) => h("td", {}, stateBadge(row.status)),
        (row) => h("td", { class: "num" }, fmtCents(row.total_cents)),
        (row) => timeCell(row.issued_at || row.created_at),
        actionsCell,
      ],
      rowClass: (row) => (row.status === "void" ? "revoked" : ""),
      fetchPage: (cursor) => api("customer-invoices", { query: { limit: 50, cursor } }),
      empty: "No invoices yet: an invoice appears here once it is issued.",
      idle: "Loading…",
    });
  },
  show: () => once.show(),
  reset() {
    once.forget();
    table.reset();
    detail.replaceChildren();
    setStatus(status, "");
  },
};
