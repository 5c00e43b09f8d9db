// What the panels share: the selected customer (clicking a customer row, or choosing one in a
// panel's customer picker, prefills every "Customer ID" field) and the price book for the
// model pickers.

import { api } from "./api.js";
import { $$ } from "./dom.js";

const events = new EventTarget();
let selected = null;
let modelsPromise = null;

export function selectedCustomer() {
  return selected;
}

/**
 * Select a customer: prefill every Customer ID input and tell the panels. `fresh: false` (an
 * ID typed into one panel's field, then looked up) keeps what the panels loaded and what the
 * admin typed next to it: only a choice from a list or a row makes them start afresh.
 */
export function selectCustomer(customer, { fresh = true } = {}) {
  selected = customer ? { id: Number(customer.id), email: customer.email || "" } : null;
  for (const input of $$("input[data-customer-input]")) input.value = selected ? String(selected.id) : "";
  events.dispatchEvent(new CustomEvent("customer", { detail: { customer: selected, fresh } }));
}

/** listener(customer, fresh) after each selection (customer null when none). */
export function onCustomerChange(listener) {
  events.addEventListener("customer", (event) => listener(event.detail.customer, event.detail.fresh));
}

/**
 * What a customer-scoped panel last loaded. show() reloads only when the query differs (so
 * switching panels does not refetch), and choosing a customer, even the same one again,
 * forgets it and runs the panel's own clean-up: one rule for every panel that lists a
 * customer's things.
 */
export function customerLoads(onChange = () => {}) {
  let loadedFor = null;
  onCustomerChange((_customer, fresh) => {
    if (!fresh) return;
    loadedFor = null;
    onChange();
  });
  return {
    loaded(query) {
      loadedFor = JSON.stringify(query);
    },
    wanted(query) {
      return query.customer_id !== null && loadedFor !== JSON.stringify(query);
    },
    forget() {
      loadedFor = null;
    },
  };
}

/** Every priced model ({provider, model, ...}), fetched once per session. */
export function pricedModels() {
  if (!modelsPromise) {
    modelsPromise = api("admin-models")
      .then((body) => body.items || [])
      .catch((error) => {
        modelsPromise = null; // try again next time
        throw error;
      });
  }
  return modelsPromise;
}

/** The price book changed (a model added, repriced, retired): fetch it again when next asked. */
export function forgetPricedModels() {
  modelsPromise = null;
}

/** Every plan ({id, name, is_default, ...}), fresh on each call (plans change in their panel). */
export async function plans() {
  const body = await api("admin-plans");
  return body.items || [];
}

/** Fill each <select data-plan-select> in `root` with the plans, keeping `selected` chosen. */
export function fillPlanSelect(select, items, selected) {
  const keepFirst = select.options.length && select.options[0].value === "" ? [select.options[0]] : [];
  const current = selected === undefined ? select.value : String(selected ?? "");
  const options = items.map((plan) => {
    const option = document.createElement("option");
    option.value = String(plan.id);
    option.textContent = plan.is_default ? `${plan.name} (default)` : plan.name;
    return option;
  });
  select.replaceChildren(...keepFirst, ...options);
  select.value = current;
  if (select.value !== current && !keepFirst.length && options.length) select.selectedIndex = 0;
}

export function forgetSession() {
  modelsPromise = null;
  selectCustomer(null);
}
