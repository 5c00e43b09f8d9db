// Top up: buy credit by card through Stripe Checkout. Before leaving for Stripe the page
// notes (in this tab's sessionStorage) the month and its top-ups so far; back on
// /account?topup=success it polls the month until the webhook has credited it, and says
// how much arrived. The credit only ever comes from Stripe's signed webhook, never from
// this page.

import { $, fmtCents, terms, thisMonth } from "../dom.js";
import { run, setStatus } from "../ui.js";
import { api } from "./api.js";
import { fetchSummary, lastSummary, onSummary } from "./account.js";
import { parseDollars } from "./money.js";
import * as session from "./session.js";

const PENDING_KEY = "KAIXU_PORTAL_TOPUP";
const POLL_MS = 2000;
const POLL_FOR_MS = 60_000;
const form = $("#topup-form");
const status = $("#topup-status");
let watching = 0; // the current watch; a newer one (or sign-out) stops the older

function customerId() {
  const who = session.who();
  return who && who.customer ? who.customer.id : null;
}

function readPending() {
  try {
    return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  } catch {
    return null;
  }
}

function renderTotals(item) {
  const t = item.totals;
  const items = [
    ["Month", item.month],
    ["Top-ups so far", fmtCents(t.topup_cents)],
    ["Cap this month", fmtCents(t.cap_cents)],
    ["Remaining", fmtCents(t.remaining_cents)],
  ];
  $("#topup-totals").replaceChildren(...terms(items));
}

/** The top-ups of `month` now: from the summary already on hand, else fetched. */
async function topupsOf(month) {
  const known = lastSummary();
  const item = known && known.month === month ? known : await fetchSummary(month);
  return Number(item.totals.topup_cents) || 0;
}

async function startCheckout(event) {
  event.preventDefault();
  const input = form.elements.namedItem("amount_cents");
  let amount;
  try {
    amount = parseDollars(input.value);
    if (amount === null || amount <= 0) throw new Error("Enter the amount to add, in dollars.");
  } catch (error) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    setStatus(status, error.message, "error");
    return;
  }
  const result = await run(
    { button: $("button[type=submit]", form), status, form, busy: "Opening Stripe Checkout…" },
    async () => {
      const body = await api("customer-topup", { method: "POST", body: { amount_cents: amount } });
      const item = body.item;
      const base = await topupsOf(item.month);
      const note = { customer_id: customerId(), session_id: item.session_id, month: item.month, base_topup_cents: base };
      sessionStorage.setItem(PENDING_KEY, JSON.stringify(note));
      return item;
    },
  );
  if (!result) return;
  setStatus(status, `Taking you to Stripe to pay ${fmtCents(result.amount_cents)}…`, "busy");
  window.location.assign(result.url);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A real session id (Stripe fills in {CHECKOUT_SESSION_ID}; an unfilled placeholder is none). */
function realSessionId(value) {
  return value && !value.includes("{") ? value : null;
}

/**
 * Back from Stripe with ?topup=success: say the payment was received, then read the month
 * every 2 s for up to a minute until its top-ups grow (the webhook has credited it).
 */
export async function watchCredit(line, sessionId) {
  const watch = ++watching;
  const noted = readPending();
  const id = realSessionId(sessionId);
  // The note counts only for this customer and this checkout (the tab may have changed hands).
  const mine = noted && noted.customer_id === customerId() && (!id || noted.session_id === id);
  const pending = mine ? noted : null;
  const month = pending ? pending.month : thisMonth();
  let base = pending ? Number(pending.base_topup_cents) : null;
  setStatus(line, "Payment received; your credit appears when Stripe confirms it.", "info");
  const until = Date.now() + POLL_FOR_MS;
  while (watch === watching) {
    let topups = null;
    try {
      topups = Number((await fetchSummary(month)).totals.topup_cents) || 0;
    } catch (error) {
      if (error && error.status === 401) return; // signed out: the sign-in form says why
    }
    if (watch !== watching) return;
    if (topups !== null && base === null) base = topups; // no note (another tab): from now on
    else if (topups !== null && topups > base) {
      sessionStorage.removeItem(PENDING_KEY);
      setStatus(line, `Credit added: ${fmtCents(topups - base)}. This month's top-ups are ${fmtCents(topups)}.`, "ok");
      return;
    }
    if (Date.now() + POLL_MS > until) break;
    await sleep(POLL_MS);
  }
  if (watch !== watching) return;
  setStatus(
    line,
    "Stripe has not confirmed the payment yet. Your credit is added as soon as it does: look at This month again in a few minutes.",
    "info",
  );
}

/** Back from Stripe with ?topup=cancel. */
export function cancelled(line) {
  sessionStorage.removeItem(PENDING_KEY);
  setStatus(line, "Top-up cancelled; nothing was charged.", "info");
}

export default {
  name: "topup",
  init() {
    form.addEventListener("submit", startCheckout);
    onSummary((item) => {
      if (item.month === thisMonth()) renderTotals(item);
    });
  },
  async show() {
    const known = lastSummary();
    if (known && known.month === thisMonth()) renderTotals(known);
    else await fetchSummary(thisMonth()).catch((error) => setStatus(status, error.message, "error"));
  },
  reset() {
    watching += 1;
    form.reset();
    setStatus(status, "");
    $("#topup-totals").replaceChildren();
  },
};
