// An invoice snapshot, rendered for the operator: its number and state, what is owed (or left
// in credit), the statement lines it adds up from, usage per model and price version (with
// the sell unit prices, cost and margin), per key, the top-ups and the carried credit.

import { badge, fmtCents, fmtInt, fmtTime, h, terms } from "../dom.js";
import { staticTable } from "../table.js";

const STATUS_TONE = { draft: "", issued: "info", paid: "ok", void: "bad" };

/** A line's sell unit prices: "$0.15 in / $0.6 out per 1M tokens". */
function rates(unit) {
  if (!unit) return "—";
  const fee = unit.request_usd && unit.request_usd !== "0" ? ` + $${unit.request_usd}/call` : "";
  return `$${unit.input_usd_per_mtok} in / $${unit.output_usd_per_mtok} out per 1M tokens${fee}`;
}

export function statusBadge(status) {
  return badge(status || "draft", STATUS_TONE[status] || "");
}

/** "No. 12" for an issued (paid, void) invoice, "Draft" before. */
export function invoiceLabel(row) {
  return row && row.number !== null && row.number !== undefined ? `No. ${row.number}` : "Draft";
}

function totals(snapshot) {
  const t = snapshot.totals || {};
  const items = [
    ["Amount owed", fmtCents(t.due_cents ?? t.grand_total_cents)],
    ["Credit remaining", fmtCents(t.credit_remaining_cents ?? 0)],
    ["AI usage (sell)", fmtCents(t.usage_cents ?? t.total_cents)],
    ["KaixuPush", fmtCents(t.push_cents)],
    ["Credits", fmtCents(t.credits_cents ?? 0)],
    ["Carried in", fmtCents(t.carried_in_cents ?? 0)],
    ["Carries out", fmtCents(t.carried_out_cents ?? 0)],
    ["Cost (operator)", fmtCents(t.cost_cents)],
    ["Margin (operator)", fmtCents(t.margin_cents)],
    ["Calls", fmtInt(t.calls)],
    ["Tokens in / out", `${fmtInt(t.input_tokens)} / ${fmtInt(t.output_tokens)}`],
  ];
  return h("dl", { class: "totals" }, terms(items));
}

function history(row) {
  if (!row) return "";
  const parts = [`Taken ${fmtTime(row.created_at)} by ${row.created_by}.`];
  if (row.issued_at) parts.push(`Issued ${fmtTime(row.issued_at)}.`);
  if (row.paid_at) parts.push(`Paid ${fmtTime(row.paid_at)}.`);
  if (row.voided_at) parts.push(`Voided ${fmtTime(row.voided_at)}.`);
  return `${parts.join(" ")} `;
}

/**
 * @param {object} snapshot the stored document
 * @param {{stored: boolean, row: object|null, actions?: Node}} options row = the stored version's
 *   row (number, status, times); actions = the buttons that act on it (billing.js)
 */
export function renderInvoice(snapshot, { stored, row, actions }) {
  const customer = snapshot.customer || {};
  const title = stored
    ? `Invoice ${invoiceLabel(row)} · ${snapshot.month} · version ${snapshot.version ?? (row && row.version)}`
    : `Live preview of ${snapshot.month} (not stored)`;
  const lines = (snapshot.lines || []).map((line) => [line.kind, line.description, fmtCents(line.cents)]);
  const usage = (snapshot.usage || []).map((line) => [
    `${line.provider} ${line.model}`,
    line.price_version_id ? `v${line.price_version_id}${line.sell_version_id ? ` / sell v${line.sell_version_id}` : " / at cost"}` : "—",
    rates(line.sell_unit),
    fmtInt(line.calls),
    fmtInt(line.input_tokens),
    fmtInt(line.output_tokens),
    fmtCents(line.sell_cents),
    fmtCents(line.cost_cents),
  ]);
  const byKey = (snapshot.by_key || []).map((line) => [
    `${line.api_key_id} (…${line.last4})${line.label ? ` ${line.label}` : ""}`,
    fmtInt(line.calls),
    fmtInt(line.input_tokens),
    fmtInt(line.output_tokens),
    fmtCents(line.sell_cents ?? line.cost_cents),
  ]);
  const topups = ((snapshot.topups && snapshot.topups.items) || []).map((t) => [
    fmtTime(t.created_at),
    fmtCents(t.amount_cents),
    t.source === "stripe_reversal" ? "Stripe refund / dispute" : t.source,
    t.actor || "",
  ]);
  const carry = snapshot.carry_over;
  return h(
    "article",
    { class: "invoice", "data-invoice": stored ? "stored" : "preview" },
    h("h4", {}, title, " ", stored && row ? statusBadge(row.status) : ""),
    h(
      "p",
      { class: "small muted" },
      `Customer #${customer.id} ${customer.email || ""} · plan ${customer.plan || "—"} · cap ${fmtCents(customer.monthly_cap_cents)}. `,
      history(row),
      `Computed ${fmtTime(snapshot.generated_at)}.`,
    ),
    actions || "",
    snapshot.lines ? "" : h("p", { class: "warn small" }, "Taken before invoices were reconciled: take a new snapshot to issue or print this month."),
    totals(snapshot),
    h("h4", {}, "Statement"),
    staticTable(["Kind", "Description", "Amount"], lines, new Set([2])),
    h("h4", {}, "Usage by model and price version"),
    staticTable(["Model", "Versions", "Sell unit prices", "Calls", "Input", "Output", "Sell", "Cost"], usage, new Set([3, 4, 5, 6, 7])),
    h("h4", {}, "By key"),
    staticTable(["Key", "Calls", "Input", "Output", "Sell"], byKey, new Set([1, 2, 3, 4])),
    h("h4", {}, "Top-ups and reversals"),
    staticTable(["Time", "Amount", "Source", "By"], topups, new Set([1])),
    carry ? h("p", { class: "small muted" }, carry.rule) : "",
    h("details", {}, h("summary", {}, "Snapshot JSON"), h("pre", { class: "code" }, JSON.stringify(snapshot, null, 2))),
  );
}
