// Customers: list and search, select (prefills Customer ID everywhere), create with the
// master key shown once; the selected customer's plan and limits, each with the value in
// force and where it comes from (the customer's own, its plan's, the default), and its
// markup override.

import { api } from "../api.js";
import { $, $$, badge, compactJson, fieldValue, fmtCents, h, intValue, timeCell } from "../dom.js";
import { fillPlanSelect, onCustomerChange, plans, selectCustomer, selectedCustomer } from "../state.js";
import { PagedTable } from "../table.js";
import { run, setStatus, showSecret } from "../ui.js";
import { attachNetlifyTokenForm } from "./netlify_token.js";

const searchForm = $("#customer-search");
const createForm = $("#customer-create");
const editForm = $("#customer-edit");
const markupForm = $("#customer-markup");
const markupStatus = $("#customer-markup-status");
const OVERRIDES = ["monthly_cap_cents", "rpm_limit", "rpd_limit", "max_devices_per_key", "max_concurrent"];
const SOURCES = { customer: "customer", plan: "from plan", default: "default" };
let table;
let editing = null; // the customer the editor shows

function idCell(row) {
  return h("td", {}, h("strong", {}, `#${row.id}`), h("span", { class: "sub" }, row.email));
}

function capCell(row) {
  const spent = `${fmtCents(row.month_spent_cents)} spent in ${row.month}`;
  const topup = row.month_topup_cents ? `, +${fmtCents(row.month_topup_cents)} top-ups` : "";
  const cap = row.effective ? row.effective.monthly_cap_cents.value : row.monthly_cap_cents;
  return h("td", { class: "num" }, fmtCents(cap), h("span", { class: "sub" }, spent + topup));
}

function markSelected() {
  const current = selectedCustomer();
  for (const tr of $$("tbody tr", table.table)) {
    tr.classList.toggle("selected", Boolean(current) && tr.dataset.customerId === String(current.id));
  }
}


async function createCustomer(event) {
  event.preventDefault();
  const button = $("button[type=submit]", createForm);
  const status = $(".status", createForm);
  const body = { email: fieldValue(createForm, "email") };
  const planId = intValue(createForm, "plan_id");
  if (planId !== null) body.plan_id = planId;
  for (const name of ["monthly_cap_cents", "rpm_limit"]) {
    const value = intValue(createForm, name);
    if (value !== null) body[name] = value;
  }
  const result = await run(
    { button, status, form: createForm, busy: "Creating the customer and its master key…" },
    () => api("admin-customers", { method: "POST", body }),
  );
  if (!result) return;
  const item = result.item;
  setStatus(status, `Created customer #${item.id} (${item.email}).`, "ok");
  createForm.reset();
  showSecret($("#customer-secret"), { title: `Master key for customer #${item.id} (${item.email})`, secret: item.key });
  selectCustomer(item);
  await table.reload();
}

// ---------------------------------------------------------------------------- editor

/** "5000 ¢ · from plan", "60 · default", "no limit · default". */
export function effectiveText(name, setting) {
  if (!setting) return "";
  const { value, source } = setting;
  let shown;
  if (value === null || value === undefined) shown = name.startsWith("allowed_") ? "any" : "no limit";
  else if (name === "monthly_cap_cents") shown = `${value} ¢ (${fmtCents(value)})`;
  else if (name === "markup_pct") shown = `${value}%`;
  else if (name.startsWith("allowed_")) shown = compactJson(value);
  else shown = String(value);
  return `${shown} · ${SOURCES[source] || source}`;
}

async function loadPlanSelects() {
  const items = await plans();
  fillPlanSelect($("#cc-plan"), items);
  fillPlanSelect($("#ce-plan"), items, editing ? editing.plan_id : undefined);
  return items;
}

function fillEditor(customer) {
  editing = customer;
  $("#customer-editor-idle").hidden = true;
  editForm.hidden = false;
  markupForm.hidden = false;
  $("#customer-editor h3").textContent = `Plan and limits of customer #${customer.id} (${customer.email})`;
  const select = editForm.elements.namedItem("plan_id");
  if (![...select.options].some((option) => option.value === String(customer.plan_id))) {
    select.append(h("option", { value: String(customer.plan_id) }, customer.plan));
  }
  select.value = String(customer.plan_id);
  const effective = customer.effective || {};
  for (const name of OVERRIDES) {
    const input = editForm.elements.namedItem(name);
    input.value = customer[name] === null || customer[name] === undefined ? "" : String(customer[name]);
    const setting = effective[name];
    const from = setting && setting.source === "default" ? "deployment default" : "plan's";
    input.placeholder = setting && setting.source !== "customer" ? `${setting.value ?? "no limit"} (${from})` : "plan's value";
  }
  for (const output of $$("output[data-effective]", $("#customer-editor"))) {
    const name = output.dataset.effective;
    const text = effectiveText(name, effective[name]);
    output.textContent = name.startsWith("allowed_") && text ? `${name.replace("allowed_", "")}: ${text}` : text;
  }
  const markup = effective.markup_pct;
  markupForm.elements.namedItem("markup_pct").value = markup && markup.source === "customer" ? markup.value : "";
  $("output[data-effective=markup_pct]", markupForm).textContent = markup ? `In force: ${effectiveText("markup_pct", markup)}` : "";
}

function clearEditor() {
  editing = null;
  $("#customer-editor-idle").hidden = false;
  editForm.hidden = true;
  markupForm.hidden = true;
  $("#customer-editor h3").textContent = "Plan and limits";
  setStatus($(".status", editForm), "");
  setStatus(markupStatus, "");
}

async function loadEditor(customer) {
  if (!customer) {
    clearEditor();
    return;
  }
  const result = await run({ status: $(".status", editForm), busy: "Loading the customer…" }, () =>
    Promise.all([api("admin-customers", { query: { id: customer.id } }), loadPlanSelects()]),
  );
  if (result && selectedCustomer()?.id === customer.id) {
    fillEditor(result[0].item);
    setStatus($(".status", editForm), "");
  }
}

async function saveEditor(event) {
  event.preventDefault();
  if (!editing) return;
  const id = editing.id;
  const body = { plan_id: intValue(editForm, "plan_id") };
  for (const name of OVERRIDES) body[name] = intValue(editForm, name); // empty: null, the plan's value
  const result = await run(
    {
      button: $("button[type=submit]", editForm),
      status: $(".status", editForm),
      form: editForm,
      busy: "Saving…",
      success: `Saved the plan and limits of customer #${id}.`,
    },
    () => api("admin-customers", { method: "PATCH", query: { id }, body }),
  );
  if (!result) return;
  fillEditor(result.item);
  await table.reload();
}

async function saveMarkup(body, button) {
  if (!editing) return;
  const id = editing.id;
  const result = await run(
    {
      button,
      status: markupStatus,
      form: markupForm,
      busy: "Saving the markup…",
      success: body.inherit ? `Customer #${id} now buys at its plan's markup.` : `Customer #${id} now buys at ${body.markup_pct}% markup.`,
    },
    () => api("admin-sell-prices", { method: "POST", body: { customer_id: id, ...body } }),
  );
  if (!result) return;
  const fresh = await run({ status: null }, () => api("admin-customers", { query: { id } }));
  if (fresh && editing && editing.id === id) fillEditor(fresh.item);
}

export default {
  name: "customers",
  init() {
    table = new PagedTable($("#customers-table"), {
      columns: [
        idCell,
        (row) => row.plan,
        capCell,
        (row) => h("td", {}, row.is_active ? badge("active", "ok") : badge("disabled", "bad")),
        (row) => h("td", { class: "num" }, String(row.active_keys)),
        (row) => h("td", {}, row.has_netlify_token ? badge("set", "info") : badge("not set")),
        (row) => timeCell(row.created_at),
      ],
      fetchPage: (cursor) =>
        api("admin-customers", { query: { q: fieldValue(searchForm, "q"), limit: 50, cursor } }),
      onRowClick: (row) => selectCustomer(row),
      decorate: (tr, row) => {
        tr.dataset.customerId = String(row.id);
        tr.title = "Select this customer";
        tr.classList.toggle("selected", selectedCustomer()?.id === row.id);
      },
      empty: "No customers match.",
      idle: "Loading customers…",
    });
    searchForm.addEventListener("submit", (event) => {
      event.preventDefault();
      table.reload();
    });
    createForm.addEventListener("submit", createCustomer);
    editForm.addEventListener("submit", saveEditor);
    markupForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = fieldValue(markupForm, "markup_pct");
      if (value === "") {
        setStatus(markupStatus, "Enter a markup percentage, or use the plan's markup.", "error");
        return;
      }
      saveMarkup({ markup_pct: value }, $("button[type=submit]", markupForm));
    });
    $("[data-markup-inherit]", markupForm).addEventListener("click", (event) =>
      saveMarkup({ inherit: true }, event.currentTarget),
    );
    onCustomerChange((customer) => loadEditor(customer));
    attachNetlifyTokenForm(() => table.reload());
    onCustomerChange(markSelected);
  },
  async show() {
    loadPlanSelects().catch((error) => setStatus($(".status", createForm), error.message, "error"));
    await table.reload(); // counts (active keys, spend, token) change in other panels
  },
  reset() {
    table.reset();
    clearEditor();
    $("#customer-secret").replaceChildren();
  },
};
