// The admin screen's entry point: error hooks, login/logout, and the panel router
// (#overview, then #customers, #keys, ... in the seed's order; one panel shown at a time).
// After login the screen opens on Customers (the seed's first panel), or the panel in the URL.

import { login } from "./api.js";
import { $, $$, bindCentsHints, fillMonths, fieldValue, fmtTime } from "./dom.js";
import { installErrorHooks } from "./errors.js";
import * as session from "./session.js";
import { forgetSession, onCustomerChange } from "./state.js";
import { run, setStatus } from "./ui.js";
import billing from "./panels/billing.js";
import customers from "./panels/customers.js";
import devices from "./panels/devices.js";
import exportsPanel from "./panels/exports.js";
import integration from "./panels/integration.js";
import kaixupush from "./panels/kaixupush.js";
import keys from "./panels/keys.js";
import monitor from "./panels/monitor.js";
import models from "./panels/models.js";
import overview from "./panels/overview.js";
import plans from "./panels/plans.js";
import usage from "./panels/usage.js";

installErrorHooks();

const PANELS = [overview, customers, keys, usage, billing, models, plans, devices, exportsPanel, kaixupush, integration, monitor];
const byName = new Map(PANELS.map((panel) => [panel.name, panel]));
const loginView = $("#login-view");
const appView = $("#app-view");
const loginForm = $("#login-form");
const loginStatus = $(".status", loginForm);
const nav = $("#sidenav");
const navToggle = $(".nav-toggle");

const END_MESSAGES = {
  logout: "You are logged out.",
  expired: "Your admin session expired; log in again.",
  unauthorized: "Your admin session is no longer valid (expired or the password changed); log in again.",
};

let currentName = "customers";

/** The panel named by the hash; other hashes (e.g. the skip link's #main) keep the current one. */
function currentPanelName() {
  const name = window.location.hash.replace(/^#/, "");
  if (byName.has(name)) currentName = name;
  return currentName;
}

function showPanel() {
  if (appView.hidden) return;
  const name = currentPanelName();
  for (const section of $$("section.panel")) section.hidden = section.dataset.panel !== name;
  for (const link of $$("a", nav)) {
    if (link.getAttribute("href") === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  nav.classList.remove("open");
  navToggle.setAttribute("aria-expanded", "false");
  const panel = byName.get(name);
  Promise.resolve(panel.show()).catch((error) => setStatus($(".status", $(`#panel-${name}`)), error.message, "error"));
}

function showSessionExpiry() {
  const at = session.expiresAt();
  $("#session-expiry").textContent = at ? `Session until ${fmtTime(at.toISOString())}` : "";
}

function enterApp() {
  loginView.hidden = true;
  appView.hidden = false;
  showSessionExpiry();
  session.scheduleExpiry();
  showPanel();
  $("#main").focus({ preventScroll: true });
}

function leaveApp(reason) {
  for (const panel of PANELS) panel.reset();
  forgetSession();
  appView.hidden = true;
  loginView.hidden = false;
  setStatus(loginStatus, END_MESSAGES[reason] || "", reason === "logout" ? "ok" : "error");
  const password = $("#login-password");
  password.value = "";
  password.focus();
}

async function onLogin(event) {
  event.preventDefault();
  const password = $("#login-password").value;
  if (!password) {
    setStatus(loginStatus, "Enter the admin password.", "error");
    $("#login-password").focus();
    return;
  }
  const result = await run(
    { button: $("button[type=submit]", loginForm), status: loginStatus, form: loginForm, busy: "Checking…" },
    () => login(password),
  );
  if (result) {
    setStatus(loginStatus, "");
    enterApp();
  }
}

function setupApiBase() {
  const form = $("#api-base-form");
  const status = $(".status", form);
  form.elements.namedItem("api_base").value = session.apiBase();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      const saved = session.setApiBase(fieldValue(form, "api_base"));
      setStatus(status, saved ? `Using the API at ${saved}.` : "Using this site's API.", "ok");
    } catch (error) {
      setStatus(status, error.message, "error");
    }
  });
}

function updateSelectedLabel(customer) {
  $("#selected-customer-label").textContent = customer ? `#${customer.id} ${customer.email}` : "none selected";
}

function boot() {
  session.forgetLegacyPassword();
  for (const panel of PANELS) panel.init();
  bindCentsHints();
  fillMonths();
  setupApiBase();
  onCustomerChange(updateSelectedLabel);
  loginForm.addEventListener("submit", onLogin);
  $("#logout-button").addEventListener("click", () => session.end("logout"));
  navToggle.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    navToggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
  window.addEventListener("hashchange", showPanel);
  session.onEnd(leaveApp);
  if (session.token()) enterApp();
  else if (session.hadExpiredToken()) session.end("expired");
  else $("#login-password").focus();
}

boot();
