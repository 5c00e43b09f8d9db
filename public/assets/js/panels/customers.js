// Customers: list and search, select (prefills Customer ID everywhere), create with the
// master key shown once.

import { api } from "../api.js";
import { $, $$, badge, fieldValue, fmtCents, h, intValue, timeCell } from "../dom.js";
import { onCustomerChange, selectCustomer, selectedCustomer } from "../state.js";
import { PagedTable } from "../table.js";
import { run, setStatus, showSecret } from "../ui.js";
import { attachNetlifyTokenForm } from "./netlify_token.js";

const searchForm = $("#customer-search");
const createForm = $("#customer-create");
let table;

function idCell(row) {
  return h("td", {}, h("strong", {}, `#${row.id}`), h("span", { class: "sub" }, row.email));
}

function capCell(row) {
  const spent = `${fmtCents(row.month_spent_cents)} spent in ${row.month}`;
  const topup = row.month_topup_cents ? `, +${fmtCents(row.month_topup_cents)} top-ups` : "";
  return h("td", { class: "num" }, fmtCents(row.monthly_cap_cents), h("span", { class: "sub" }, spent + topup));
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
  const plan = fieldValue(createForm, "plan");
  if (plan) body.plan = plan;
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
    attachNetlifyTokenForm(() => table.reload());
    onCustomerChange(markSelected);
  },
  async show() {
    await table.reload(); // counts (active keys, spend, token) change in other panels
  },
  reset() {
    table.reset();
    $("#customer-secret").replaceChildren();
  },
};
