// Billing & Controls: the customer's policy, top-ups (manual, or Stripe checkout when the
// server has Stripe), and invoice snapshots (take, list versions, view, issue, mark paid,
// void, print).

import { api, idempotencyKey, request } from "../api.js";
import { attachModelsEditor, modelsText, parseModels } from "../allowlist.js";
import { $, checkedValues, fieldValue, fmtCents, h, intValue, setChecked, timeCell } from "../dom.js";
import { printInvoice } from "../print.js";
import { customerLoads } from "../state.js";
import { PagedTable } from "../table.js";
import { requireCustomerId, run, setStatus, submitForm } from "../ui.js";
import { invoiceLabel, renderInvoice, statusBadge } from "./invoice_view.js";

const loadForm = $("#billing-load");
const policyForm = $("#policy-form");
const topupForm = $("#topup-form");
const invoiceForm = $("#invoice-form");
const invoiceStatus = $("#invoice-status");
const invoiceView = $("#invoice-view");
let modelsEditor;
let topups;
let invoices;
let policyFor = null; // the customer whose policy fills the form
const loads = customerLoads();

const customerId = () => intValue(loadForm, "customer_id");

// ---------------------------------------------------------------------------- policy

const RPM_HINT = "Empty: the plan's limit, else the deployment default (DEFAULT_RPM_LIMIT, 120/min unless set).";
const UNITS = { rpm_limit: "/min", rpd_limit: "/day", monthly_cap_cents: " ¢", max_devices_per_key: "" };
const EMPTY = { rpm_limit: "no limit", rpd_limit: "no limit", monthly_cap_cents: "no cap", max_devices_per_key: "unlimited" };
const FROM = { plan: "plan's", default: "deployment default" };

/**
 * What an empty field means for this customer, from its item's `effective` block: the plan's
 * value, or the deployment's default (e.g. 120/min when DEFAULT_RPM_LIMIT is not set).
 */
function inheritedHints(customer) {
  const effective = customer.effective || {};
  for (const [name, unit] of Object.entries(UNITS)) {
    const setting = effective[name];
    const input = policyForm.elements.namedItem(name);
    if (!setting) continue;
    const shown = setting.value === null || setting.value === undefined ? EMPTY[name] : `${setting.value}${unit}`;
    const from = FROM[setting.source];
    input.placeholder = from ? `${shown} (${from})` : `${FROM.plan} value`;
    const output = $(`output[data-policy-effective="${name}"]`, policyForm);
    if (output) output.textContent = `In force: ${shown} · ${setting.source === "customer" ? "customer" : from}`;
  }
}

function resetHints() {
  policyForm.elements.namedItem("rpm_limit").placeholder = "deployment default";
  policyForm.elements.namedItem("rpd_limit").placeholder = "plan's value";
  policyForm.elements.namedItem("monthly_cap_cents").placeholder = "plan's value";
  policyForm.elements.namedItem("max_devices_per_key").placeholder = "unlimited";
  $('output[data-policy-effective="rpm_limit"]', policyForm).textContent = RPM_HINT;
  $('output[data-policy-effective="rpd_limit"]', policyForm).textContent = "";
}

function fillPolicy(customer) {
  const set = (name, value) => {
    policyForm.elements.namedItem(name).value = value === null || value === undefined ? "" : String(value);
  };
  set("plan", customer.plan);
  set("monthly_cap_cents", customer.monthly_cap_cents);
  set("max_devices_per_key", customer.max_devices_per_key);
  set("rpm_limit", customer.rpm_limit);
  set("rpd_limit", customer.rpd_limit);
  policyForm.elements.namedItem("is_active").checked = Boolean(customer.is_active);
  policyForm.elements.namedItem("require_install_id").checked = Boolean(customer.require_install_id);
  setChecked(policyForm, "allowed_providers", customer.allowed_providers || []);
  policyForm.elements.namedItem("allowed_models").value = modelsText(customer.allowed_models);
  policyForm.elements.namedItem("monthly_cap_cents").dispatchEvent(new Event("input"));
  modelsEditor.check();
  inheritedHints(customer);
  policyFor = customer.id;
}

function policyBody() {
  const providers = checkedValues(policyForm, "allowed_providers");
  return {
    monthly_cap_cents: intValue(policyForm, "monthly_cap_cents"),
    is_active: policyForm.elements.namedItem("is_active").checked,
    max_devices_per_key: intValue(policyForm, "max_devices_per_key"),
    require_install_id: policyForm.elements.namedItem("require_install_id").checked,
    rpm_limit: intValue(policyForm, "rpm_limit"),
    rpd_limit: intValue(policyForm, "rpd_limit"),
    allowed_providers: providers.length ? providers : null,
    allowed_models: parseModels(fieldValue(policyForm, "allowed_models")),
  };
}

async function savePolicy(event) {
  event.preventDefault();
  const id = customerId();
  if (policyFor === null || policyFor !== id) {
    setStatus($(".status", policyForm), "Load the customer first (the Load button above), then change its policy.", "error");
    return;
  }
  const result = await submitForm(
    policyForm,
    { read: policyBody, invalid: "allowed_models", busy: "Saving the policy…", success: `Saved the policy of customer #${id}.` },
    (body) => api("admin-customers", { method: "PATCH", query: { id }, body }),
  );
  if (result) fillPolicy(result.item);
}

// ---------------------------------------------------------------------------- top-ups

function topupBody() {
  return {
    customer_id: customerId(),
    amount_cents: intValue(topupForm, "amount_cents"),
    month: fieldValue(topupForm, "month") || undefined,
  };
}

async function manualTopup(event) {
  event.preventDefault();
  const status = $(".status", topupForm);
  if (requireCustomerId(loadForm, status) === null) return;
  const body = topupBody();
  const key = idempotencyKey(); // one per click: a retried request credits once
  const result = await run(
    {
      button: $("button[type=submit]", topupForm),
      status,
      form: topupForm,
      busy: "Crediting…",
      success: (r) => `Credited ${fmtCents(r.item.amount_cents)} to ${r.item.month} for customer #${r.item.customer_id}.`,
    },
    () => api("admin-topups", { method: "POST", body, headers: { "idempotency-key": key } }),
  );
  if (result) {
    topupForm.elements.namedItem("amount_cents").value = "";
    await topups.reload();
  }
}

async function stripeCheckout(event) {
  const button = event.currentTarget;
  const status = $(".status", topupForm);
  if (requireCustomerId(loadForm, status) === null) return;
  const key = idempotencyKey();
  let notConfigured = false;
  const result = await run({ button, status, form: topupForm, busy: "Creating a Stripe checkout session…" }, async () => {
    try {
      return await api("admin-stripe-checkout", { method: "POST", body: topupBody(), headers: { "idempotency-key": key } });
    } catch (error) {
      if (error.code === "STRIPE_NOT_CONFIGURED") {
        notConfigured = error;
        return null;
      }
      throw error;
    }
  });
  if (notConfigured) {
    setStatus(
      status,
      `Stripe checkout is not available on this server: ${notConfigured.message} Use a manual top-up instead.`,
      "info",
    );
    return;
  }
  if (!result) return;
  const item = result.item;
  const link = h("a", { href: item.url, target: "_blank", rel: "noopener noreferrer" }, "Open the Stripe checkout page");
  status.replaceChildren(
    `Checkout session for ${fmtCents(item.amount_cents)} (${item.month}) is ready: `,
    link,
    ". The month is credited when Stripe confirms the payment.",
  );
  status.className = "status ok";
}

// ---------------------------------------------------------------------------- invoices

function showStored(item) {
  invoiceView.replaceChildren(renderInvoice(item.snapshot, { stored: true, row: item, actions: invoiceActions(item) }));
}

async function showInvoice(promise, { stored }) {
  const result = await run({ status: invoiceStatus, busy: "Loading the invoice…" }, () => promise());
  if (!result) return;
  const item = result.item;
  if (stored) showStored(item);
  else invoiceView.replaceChildren(renderInvoice(item.snapshot, { stored: false, row: null }));
}

// Each state change asks first: issuing takes the next number for good, voiding cannot be undone.
const TRANSITIONS = [
  { status: "issued", label: "Issue", from: ["draft"], done: "Issued", confirm: (row) => `Issue ${row.month} (version ${row.version})? It takes the next invoice number and books the credit it carries into the next month.` },
  { status: "paid", label: "Mark paid", from: ["issued"], done: "Marked paid", confirm: (row) => `Mark invoice ${invoiceLabel(row)} as paid?` },
  { status: "void", label: "Void", from: ["issued", "paid"], done: "Voided", danger: true, confirm: (row) => `Void invoice ${invoiceLabel(row)}? It keeps its number, and the credit it carried into the next month is taken back. This cannot be undone.` },
];

async function changeStatus(row, transition, button) {
  if (!window.confirm(transition.confirm(row))) return;
  const result = await run(
    {
      button,
      status: invoiceStatus,
      busy: "Saving…",
      success: (r) => `${transition.done}: invoice ${invoiceLabel(r.item)} of ${r.item.month} (version ${r.item.version}).`,
    },
    () => api("admin-invoices", { method: "PATCH", query: { id: row.id }, body: { status: transition.status } }),
  );
  if (!result) return;
  showStored(result.item);
  await invoices.reload();
}

function invoiceActions(row) {
  const print = h("button", { type: "button", "data-invoice-print": "" }, "Print / PDF");
  print.addEventListener("click", () =>
    printInvoice({
      button: print,
      status: invoiceStatus,
      label: `${invoiceLabel(row)} of ${row.month}`,
      fetchHtml: () => request("admin-invoices", { query: { id: row.id, format: "html" } }),
    }),
  );
  const buttons = TRANSITIONS.filter((t) => t.from.includes(row.status)).map((transition) => {
    const button = h("button", { type: "button", class: transition.danger ? "danger" : "", "data-invoice-action": transition.status }, transition.label);
    button.addEventListener("click", () => changeStatus(row, transition, button));
    return button;
  });
  return h("div", { class: "toolbar", "data-invoice-actions": "" }, print, ...buttons);
}

async function takeSnapshot(event) {
  event.preventDefault();
  if (requireCustomerId(loadForm, invoiceStatus) === null) return;
  const body = { customer_id: customerId(), month: fieldValue(invoiceForm, "month") };
  const key = idempotencyKey();
  const result = await run(
    {
      button: $("button[type=submit]", invoiceForm),
      status: invoiceStatus,
      form: invoiceForm,
      busy: "Taking the snapshot…",
      success: (r) => `Stored version ${r.item.version} of ${r.item.month} (${fmtCents(r.item.total_cents)}).`,
    },
    () => api("admin-invoices", { method: "POST", body, headers: { "idempotency-key": key } }),
  );
  if (!result) return;
  showStored(result.item);
  await invoices.reload();
}

function viewButton(row) {
  const button = h("button", { type: "button", class: "small" }, "View");
  button.setAttribute("aria-label", `View version ${row.version} of ${row.month}`);
  button.addEventListener("click", () =>
    showInvoice(() => api("admin-invoices", { query: { id: row.id } }), { stored: true }),
  );
  return h("td", {}, button);
}

// ---------------------------------------------------------------------------- panel

async function load() {
  const id = requireCustomerId(loadForm, $(".status", policyForm));
  if (id === null) return;
  loads.loaded({ customer_id: id });
  invoiceView.replaceChildren(h("p", { class: "muted" }, "—"));
  const listing = Promise.all([topups.reload(), invoices.reload()]);
  const result = await run(
    { button: $("button[type=submit]", loadForm), status: $(".status", policyForm), busy: "Loading the customer…" },
    () => api("admin-customers", { query: { id } }),
  );
  if (result) fillPolicy(result.item);
  await listing;
}

export default {
  name: "billing",
  init() {
    modelsEditor = attachModelsEditor($(".models-editor", policyForm));
    topups = new PagedTable($("#topups-table"), {
      columns: [
        (row) => timeCell(row.created_at),
        (row) => row.month,
        (row) => h("td", { class: "num" }, fmtCents(row.amount_cents)),
        (row) => row.source,
        (row) => row.actor || "",
      ],
      fetchPage: (cursor) => api("admin-topups", { query: { customer_id: customerId(), limit: 20, cursor } }),
      empty: "No top-ups yet.",
      idle: "Load a customer to see its top-ups.",
    });
    invoices = new PagedTable($("#invoices-table"), {
      columns: [
        (row) => h("td", {}, h("strong", {}, `v${row.version}`), " ", statusBadge(row.status), h("span", { class: "sub" }, invoiceLabel(row))),
        (row) => row.month,
        (row) => h("td", { class: "num", title: "Amount due" }, fmtCents(row.total_cents)),
        (row) => timeCell(row.created_at),
        (row) => row.created_by || "",
        viewButton,
      ],
      onRowClick: (row) => showInvoice(() => api("admin-invoices", { query: { id: row.id } }), { stored: true }),
      fetchPage: (cursor) => api("admin-invoices", { query: { customer_id: customerId(), limit: 20, cursor } }),
      empty: "No snapshots yet: take one above.",
      idle: "Load a customer to see its invoice snapshots.",
    });
    loadForm.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    policyForm.addEventListener("submit", savePolicy);
    topupForm.addEventListener("submit", manualTopup);
    $("[data-stripe-checkout]", topupForm).addEventListener("click", stripeCheckout);
    invoiceForm.addEventListener("submit", takeSnapshot);
    $("[data-invoice-preview]", invoiceForm).addEventListener("click", () => {
      if (requireCustomerId(loadForm, invoiceStatus) === null) return;
      showInvoice(
        () => api("admin-invoices", { query: { preview: 1, customer_id: customerId(), month: fieldValue(invoiceForm, "month") } }),
        { stored: false },
      );
    });
  },
  async show() {
    modelsEditor.load().catch(() => {});
    if (loads.wanted({ customer_id: customerId() })) await load();
  },
  reset() {
    loads.forget();
    policyFor = null;
    policyForm.reset();
    resetHints();
    topups.reset();
    invoices.reset();
    invoiceView.replaceChildren(h("p", { class: "muted" }, "—"));
  },
};
