// Plans: the settings customers inherit unless they override them (cap, rate limits, seats,
// concurrency, allowlists), the markup they buy at, included credit, Stripe top-ups, prepaid.
// Create, edit, make default (new customers get it), delete (refused while in use).

import { api } from "../api.js";
import { $, badge, checkedValues, compactJson, fieldValue, fmtCents, h, intValue, setChecked, yesNo } from "../dom.js";
import { PagedTable } from "../table.js";
import { run, setStatus } from "../ui.js";

const form = $("#plan-form");
const status = $("#plans-status");
const LIMITS = ["monthly_cap_cents", "rpm_limit", "rpd_limit", "max_devices_per_key", "max_concurrent", "included_credit_cents"];
let table;
let editing = null; // the plan the form edits; null: a new plan

const limit = (value, none) => (value === null || value === undefined ? h("span", { class: "muted" }, none) : String(value));

function actionsCell(plan) {
  const edit = h("button", { type: "button", class: "small", "aria-label": `Edit plan ${plan.name}` }, "Edit");
  edit.addEventListener("click", () => startEdit(plan));
  const buttons = [edit];
  if (!plan.is_default) {
    const makeDefault = h("button", { type: "button", class: "small", "aria-label": `Make ${plan.name} the default plan` }, "Make default");
    makeDefault.addEventListener("click", () => makeDefaultPlan(plan, makeDefault));
    const remove = h("button", { type: "button", class: "small danger", "aria-label": `Delete plan ${plan.name}` }, "Delete");
    remove.addEventListener("click", () => deletePlan(plan, remove));
    buttons.push(makeDefault, remove);
  }
  return h("td", {}, h("div", { class: "actions" }, buttons));
}

function startEdit(plan) {
  editing = plan;
  form.reset();
  form.elements.namedItem("id").value = String(plan.id);
  const set = (name, value) => {
    form.elements.namedItem(name).value = value === null || value === undefined ? "" : String(value);
  };
  set("name", plan.name);
  for (const name of LIMITS) set(name, plan[name]);
  set("markup_pct", plan.markup_pct);
  setChecked(form, "allowed_providers", plan.allowed_providers || []);
  form.elements.namedItem("stripe_topups").checked = Boolean(plan.stripe_topups);
  form.elements.namedItem("prepaid").checked = Boolean(plan.prepaid);
  for (const name of ["monthly_cap_cents", "included_credit_cents"]) form.elements.namedItem(name).dispatchEvent(new Event("input"));
  $("#plan-form-title").textContent = `Edit plan ${plan.name}`;
  $("button[type=submit]", form).textContent = `Save plan ${plan.name}`;
  setStatus($(".status", form), "");
  form.elements.namedItem("name").focus();
}

function newPlan() {
  editing = null;
  form.reset();
  form.elements.namedItem("id").value = "";
  $("#plan-form-title").textContent = "New plan";
  $("button[type=submit]", form).textContent = "Create plan";
}

function body() {
  const providers = checkedValues(form, "allowed_providers");
  const out = {
    name: fieldValue(form, "name"),
    monthly_cap_cents: intValue(form, "monthly_cap_cents"),
    rpm_limit: intValue(form, "rpm_limit"),
    rpd_limit: intValue(form, "rpd_limit"),
    max_devices_per_key: intValue(form, "max_devices_per_key"),
    max_concurrent: intValue(form, "max_concurrent"),
    allowed_providers: providers.length ? providers : null,
    stripe_topups: form.elements.namedItem("stripe_topups").checked,
    prepaid: form.elements.namedItem("prepaid").checked,
  };
  const credit = intValue(form, "included_credit_cents");
  out.included_credit_cents = credit === null ? 0 : credit;
  const markup = fieldValue(form, "markup_pct");
  // A markup change is a new sell-rule version: send it only when it changes.
  if (editing === null ? markup !== "" : Number(markup || 0) !== Number(editing.markup_pct || 0)) {
    out.markup_pct = markup === "" ? "0" : markup;
  }
  if (editing === null) {
    for (const name of ["rpm_limit", "rpd_limit", "max_devices_per_key", "max_concurrent", "allowed_providers"]) {
      if (out[name] === null) delete out[name];
    }
  }
  return out;
}

async function save(event) {
  event.preventDefault();
  const formStatus = $(".status", form);
  const payload = body();
  const plan = editing;
  const result = await run(
    {
      button: $("button[type=submit]", form),
      status: formStatus,
      form,
      busy: plan ? "Saving the plan…" : "Creating the plan…",
      success: (r) => (plan ? `Saved plan ${r.item.name}.` : `Created plan ${r.item.name}.`),
    },
    () =>
      plan
        ? api("admin-plans", { method: "PATCH", query: { id: plan.id }, body: payload })
        : api("admin-plans", { method: "POST", body: payload }),
  );
  if (!result) return;
  if (plan) startEdit(result.item);
  else form.reset();
  setStatus(formStatus, plan ? `Saved plan ${result.item.name}.` : `Created plan ${result.item.name}.`, "ok");
  await reload();
}

async function makeDefaultPlan(plan, button) {
  const result = await run(
    { button, status, busy: `Making ${plan.name} the default…`, success: `${plan.name} is now the default plan for new customers.` },
    () => api("admin-plans", { method: "PATCH", query: { id: plan.id }, body: { is_default: true } }),
  );
  if (result) await reload();
}

async function deletePlan(plan, button) {
  if (!window.confirm(`Delete plan ${plan.name}?`)) return;
  const result = await run(
    { button, status, busy: `Deleting ${plan.name}…`, success: `Deleted plan ${plan.name}.` },
    () => api("admin-plans", { method: "DELETE", query: { id: plan.id } }),
  );
  if (!result) return;
  if (editing && editing.id === plan.id) newPlan();
  await reload();
}

async function reload() {
  await table.reload();
}

export default {
  name: "plans",
  init() {
    table = new PagedTable($("#plans-table"), {
      columns: [
        (plan) => h("td", {}, h("strong", {}, plan.name)),
        (plan) => h("td", { class: "num" }, fmtCents(plan.monthly_cap_cents)),
        (plan) => h("td", { class: "num" }, limit(plan.rpm_limit, "default"), " / ", limit(plan.rpd_limit, "none")),
        (plan) => h("td", { class: "num" }, limit(plan.max_devices_per_key, "unlimited")),
        (plan) => h("td", { class: "num" }, limit(plan.max_concurrent, "default")),
        (plan) =>
          h(
            "td",
            {},
            plan.allowed_providers ? compactJson(plan.allowed_providers) : h("span", { class: "muted" }, "every provider"),
            plan.allowed_models ? h("span", { class: "sub" }, compactJson(plan.allowed_models)) : null,
          ),
        (plan) => h("td", { class: "num" }, `${plan.markup_pct}%`),
        (plan) => h("td", { class: "num" }, fmtCents(plan.included_credit_cents)),
        (plan) => h("td", {}, yesNo(plan.stripe_topups)),
        (plan) => h("td", {}, yesNo(plan.prepaid)),
        (plan) => h("td", {}, plan.is_default ? badge("default", "info") : ""),
        (plan) => h("td", { class: "num" }, String(plan.customers ?? 0)),
        actionsCell,
      ],
      fetchPage: () => api("admin-plans"),
      decorate: (tr, plan) => {
        tr.dataset.planId = String(plan.id);
      },
      empty: "No plans yet.",
      idle: "Loading plans…",
    });
    form.addEventListener("submit", save);
    $("[data-new-plan]", form).addEventListener("click", newPlan);
  },
  async show() {
    await reload(); // customer counts change in Customers
  },
  reset() {
    newPlan();
    table.reset();
    setStatus(status, "");
  },
};
