// An invoice snapshot, rendered for a person: who, which month, what is owed, and the
// lines (per key, per model, top-ups, KaixuPush) it was computed from.

import { fmtCents, fmtInt, fmtTime, h } from "../dom.js";

function table(headers, rows, numeric = new Set()) {
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

function totals(snapshot) {
  const t = snapshot.totals || {};
  const items = [
    ["Amount owed", fmtCents(t.grand_total_cents)],
    ["AI usage", fmtCents(t.total_cents)],
    ["KaixuPush", fmtCents(t.push_cents)],
    ["Cap incl. top-ups", fmtCents(snapshot.cap_cents)],
    ["Top-ups (credit)", fmtCents(snapshot.topups && snapshot.topups.total_cents)],
    ["Calls", fmtInt(t.calls)],
    ["Tokens in / out", `${fmtInt(t.input_tokens)} / ${fmtInt(t.output_tokens)}`],
  ];
  return h("dl", { class: "totals" }, items.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value))));
}

/**
 * @param {object} snapshot the stored document
 * @param {{stored: boolean, row: object|null}} options row = the stored version's row
 */
export function renderInvoice(snapshot, { stored, row }) {
  const customer = snapshot.customer || {};
  const title = stored
    ? `Invoice ${snapshot.month} · version ${snapshot.version ?? (row && row.version)}`
    : `Live preview of ${snapshot.month} (not stored)`;
  const taken = row ? `Taken ${fmtTime(row.created_at)} by ${row.created_by}. ` : "";
  const byKey = (snapshot.by_key || []).map((line) => [
    `${line.api_key_id} (…${line.last4})${line.label ? ` ${line.label}` : ""}`,
    fmtInt(line.calls),
    fmtInt(line.input_tokens),
    fmtInt(line.output_tokens),
    fmtCents(line.cost_cents),
  ]);
  const byModel = (snapshot.by_model || []).map((line) => [
    line.provider,
    line.model,
    fmtInt(line.calls),
    fmtInt(line.input_tokens),
    fmtInt(line.output_tokens),
    fmtCents(line.cost_cents),
  ]);
  const topups = ((snapshot.topups && snapshot.topups.items) || []).map((t) => [
    fmtTime(t.created_at),
    fmtCents(t.amount_cents),
    t.source,
    t.actor || "",
  ]);
  const push = snapshot.push || {};
  const pushNote = push.available
    ? `KaixuPush charges this month: ${fmtCents(push.total_cents)}.`
    : "KaixuPush charges: none recorded for this deployment.";
  return h(
    "article",
    { class: "invoice", "data-invoice": stored ? "stored" : "preview" },
    h("h4", {}, title),
    h(
      "p",
      { class: "small muted" },
      `Customer #${customer.id} ${customer.email || ""} · plan ${customer.plan || "—"} · base cap ${fmtCents(customer.monthly_cap_cents)}. `,
      taken,
      `Computed ${fmtTime(snapshot.generated_at)}.`,
    ),
    totals(snapshot),
    h("h4", {}, "By key"),
    table(["Key", "Calls", "Input", "Output", "Cost"], byKey, new Set([1, 2, 3, 4])),
    h("h4", {}, "By model"),
    table(["Provider", "Model", "Calls", "Input", "Output", "Cost"], byModel, new Set([2, 3, 4, 5])),
    h("h4", {}, "Top-ups"),
    table(["Time", "Amount", "Source", "By"], topups, new Set([1])),
    h("p", { class: "small" }, pushNote),
    h("p", { class: "small muted" }, "Top-ups raise the month's cap; they are credit, not charges, so they are not added to the amount owed."),
    h("details", {}, h("summary", {}, "Snapshot JSON"), h("pre", { class: "code" }, JSON.stringify(snapshot, null, 2))),
  );
}
