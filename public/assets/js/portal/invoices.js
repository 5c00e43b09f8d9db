// Invoices: the issued ones (paid and void too; drafts are the operator's), one shown with
// its statement, and the printable invoice opened in a new window to print or save as PDF.

import { $, fmtCents, fmtInt, fmtTime, h, timeCell } from "../dom.js";
import { PagedTable } from "../table.js";
import { run, setStatus } from "../ui.js";
import { api, request } from "./api.js";
import { stateBadge } from "./ui.js";

const status = $("#invoices-status");
const detail = $("#invoice-detail");
let table;
let loaded = false;

function number(row) {
  return row.number !== null && row.number !== undefined ? `No. ${row.number}` : `#${row.id}`;
}

function actionsCell(row) {
  const view = h("button", { type: "button", class: "small" }, "View");
  const print = h("button", { type: "button", class: "small" }, "Print / PDF");
  view.setAttribute("aria-label", `View invoice ${number(row)} of ${row.month}`);
  print.setAttribute("aria-label", `Print invoice ${number(row)} of ${row.month}`);
  view.addEventListener("click", () => showInvoice(row, view));
  print.addEventListener("click", () => printInvoice(row, print));
  return h("td", {}, h("div", { class: "actions" }, view, print));
}

function table2(headers, rows, numeric = new Set()) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headers.map((text, i) => h("th", { class: numeric.has(i) ? "num" : "" }, text)))),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((cells) => h("tr", {}, cells.map((text, i) => h("td", { class: numeric.has(i) ? "num" : "" }, text))))
          : h("tr", {}, h("td", { class: "empty", colspan: headers.length }, "None.")),
      ),
    ),
  );
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
    h("dl", { class: "totals" }, totals.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value)))),
    h("h4", {}, "Statement"),
    table2(["Line", "Amount"], lines, new Set([1])),
    usage.length ? h("h4", {}, "AI usage by model") : null,
    usage.length ? table2(["Model", "Calls", "Input", "Output", "Charge"], usage, new Set([1, 2, 3, 4])) : null,
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

/** Poll until the new window shows the document at `url` (it loads on its own). */
async function loadedDocument(win, url) {
  for (let i = 0; i < 400; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    try {
      if (win.document.URL === url && win.document.readyState !== "loading") return win.document;
    } catch {
      return null; // closed, or no longer ours
    }
  }
  return null;
}

/**
 * Fetch the printable invoice with the session header and open it in a new window from a
 * Blob URL (a link could not carry the header). The window is opened within the click, so
 * pop-up blockers let it through. A blob document inherits this page's Content-Security-
 * Policy, which refuses inline <style>: its style is applied again as a constructed sheet.
 */
async function printInvoice(row, button) {
  const win = window.open("", "_blank");
  const url = await run({ button, status, busy: "Preparing the printable invoice…" }, async () => {
    const response = await request("customer-invoices", { query: { id: row.id, format: "html" } });
    return URL.createObjectURL(new Blob([await response.text()], { type: "text/html" }));
  });
  if (!url) {
    if (win) win.close();
    return;
  }
  setTimeout(() => URL.revokeObjectURL(url), 120_000);
  if (!win) {
    setStatus(status, "The browser blocked the new window: allow pop-ups for this site and try again.", "error");
    return;
  }
  win.location.replace(url);
  const doc = await loadedDocument(win, url);
  if (doc) {
    const sheet = new win.CSSStyleSheet();
    sheet.replaceSync([...doc.querySelectorAll("style")].map((style) => style.textContent).join("\n"));
    doc.adoptedStyleSheets = [sheet];
  }
  setStatus(status, `Opened invoice ${number(row)} of ${row.month} in a new window: print it, or save it as PDF.`, "ok");
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
  async show() {
    if (loaded) return;
    loaded = true;
    await table.reload();
  },
  reset() {
    loaded = false;
    table.reset();
    detail.replaceChildren();
    setStatus(status, "");
  },
};
