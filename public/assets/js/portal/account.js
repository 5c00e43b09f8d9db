// The account's month as the panels share it: one customer-summary answer, published to
// every panel that shows part of it (the month panel, the top-up panel, the nav's "Top up").

import { api } from "./api.js";

const events = new EventTarget();
let latest = null;

/** GET customer-summary?month= and tell the listeners; returns the item. */
export async function fetchSummary(month) {
  const body = await api("customer-summary", { query: { month } });
  latest = body.item;
  events.dispatchEvent(new CustomEvent("summary", { detail: latest }));
  return latest;
}

export function lastSummary() {
  return latest;
}

export function onSummary(listener) {
  events.addEventListener("summary", (event) => listener(event.detail));
}

export function forgetAccount() {
  latest = null;
}
