// The customer portal's entry point: sign-in with a key (exchanged at once for a session
// token), sign-out, the panel router (#month first) and the return from Stripe Checkout
// (?topup=success|cancel, read once and taken out of the address bar).

import { $, $$, fillMonths, thisMonth } from "../dom.js";
import { installErrorHooks } from "../errors.js";
import { createShell } from "../shell.js";
import { setStatus } from "../ui.js";
import { fetchSummary, forgetAccount, onSummary } from "./account.js";
import { signIn } from "./api.js";
import * as session from "./session.js";
import { forgetKeys } from "./ui.js";
import alerts from "./alerts.js";
import devices from "./devices.js";
import invoices from "./invoices.js";
import kaixupush from "./kaixupush.js";
import keys from "./keys.js";
import month from "./month.js";
import topup, { cancelled, watchCredit } from "./topup.js";
import usage from "./usage.js";

installErrorHooks({ app: "kaixu-portal", build: "portal-spa-1" });

let topupsAllowed = false;
let pendingReturn = null; // {outcome, sessionId} from Stripe, until someone is signed in

const PANELS = [month, usage, invoices, keys, devices, kaixupush, topup, alerts];
const shell = createShell({ panels: PANELS, first: "month", allowed: (name) => name !== "topup" || topupsAllowed });
const appView = $("#app-view");
const loginForm = $("#login-form");
const keyInput = $("#login-key");
const topupLink = $('#sidenav a[href="#topup"]');
const returnLine = $("#topup-return-status");

const END_MESSAGES = {
  signout: "You are signed out.",
  expired: "Your session expired; sign in again.",
  unauthorized: "Your session has ended; sign in again.",
};

/** "Top up" is offered only when the customer's plan takes card top-ups. */
function updateTopups(item) {
  topupsAllowed = Boolean(item && item.customer && item.customer.stripe_topups);
  topupLink.hidden = !topupsAllowed;
  if (!topupsAllowed && shell.current() === "topup") {
    shell.fallBack("month");
    if (window.location.hash === "#topup") window.location.hash = "#month";
  }
}

function showWho() {
  const who = session.who();
  const customer = who && who.customer ? who.customer : {};
  const key = who && who.key ? who.key : {};
  $("#signed-in-label").textContent = `${customer.email || `customer ${customer.id ?? ""}`}${key.key_last4 ? ` (key …${key.key_last4})` : ""}`;
}

/** Back from Stripe: say what happened, next to the panels (or on the sign-in card). */
function handleReturn() {
  if (!pendingReturn) return;
  const { outcome, sessionId } = pendingReturn;
  if (appView.hidden) {
    const line = $("#login-topup-status");
    if (outcome === "cancel") {
      cancelled(line);
      pendingReturn = null;
    } else setStatus(line, "Payment received; sign in to see your credit.", "info");
    return;
  }
  pendingReturn = null;
  setStatus($("#login-topup-status"), "");
  if (outcome === "cancel") cancelled(returnLine);
  else watchCredit(returnLine, sessionId);
}

async function enterApp() {
  shell.enter(session);
  showWho();
  if (window.location.hash === "#topup") {
    // Whether top-ups are offered is known from the month: learn it before choosing the panel.
    await fetchSummary(thisMonth()).catch(() => null);
  }
  shell.showPanel();
  if (shell.current() !== "month") fetchSummary(thisMonth()).catch(() => {}); // the nav's "Top up"
  $("#main").focus({ preventScroll: true });
  handleReturn();
}

function leaveApp(reason, message) {
  shell.leave();
  forgetAccount();
  forgetKeys();
  updateTopups(null);
  for (const select of $$("select[data-key-select]")) select.replaceChildren(select.options[0]);
  setStatus(returnLine, "");
  const text = reason === "unauthorized" && message ? message : END_MESSAGES[reason] || "";
  setStatus(shell.loginStatus, text, reason === "signout" ? "ok" : "error");
  keyInput.value = "";
  keyInput.focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) {
    setStatus(shell.loginStatus, "Enter your Kaixu key (it starts with kx_live_).", "error");
    keyInput.setAttribute("aria-invalid", "true");
    keyInput.focus();
    return;
  }
  const result = await shell.signIn(() => signIn(key));
  keyInput.value = ""; // the key is not kept, even in the form
  if (result) enterApp();
  else keyInput.focus();
}

/** Read ?topup= once, then take the query out of the address bar (a reload must not repeat it). */
function readReturn() {
  const params = new URLSearchParams(window.location.search);
  const outcome = params.get("topup");
  if (!params.toString()) return;
  window.history.replaceState(null, "", window.location.pathname + window.location.hash);
  if (outcome === "success" || outcome === "cancel") pendingReturn = { outcome, sessionId: params.get("session_id") };
}

function boot() {
  readReturn();
  shell.init();
  fillMonths();
  onSummary(updateTopups); // the plan (and so top-ups) is the same whatever the month
  loginForm.addEventListener("submit", onSignIn);
  $("#signout-button").addEventListener("click", () => session.end("signout"));
  session.onEnd(leaveApp);
  if (session.token()) enterApp();
  else {
    if (session.hadExpiredToken()) session.end("expired");
    handleReturn();
    keyInput.focus();
  }
}

boot();
