// The admin screen's entry point: error hooks, login/logout, and the panel router
// (#overview, then #customers, #keys, ... in the seed's order; one panel shown at a time).
// After login the screen opens on Customers (the seed's first panel), or the panel in the URL.

import { addProviderChoices } from "./allowlist.js";
import { login } from "./api.js";
import { attachCustomerPickers } from "./customer_picker.js";
import { $, bindCentsHints, fillMonths, fieldValue } from "./dom.js";
import { installErrorHooks } from "./errors.js";
import { apiBase, setApiBase } from "./http.js";
import * as session from "./session.js";
import { createShell } from "./shell.js";
import { forgetSession, onCustomerChange, pricedModels } from "./state.js";
import { setStatus } from "./ui.js";
import audit from "./panels/audit.js";
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

installErrorHooks({ app: "kaixu-admin", build: "admin-spa-1" });

const PANELS = [overview, customers, keys, usage, billing, models, plans, devices, exportsPanel, kaixupush, integration, monitor, audit];
const shell = createShell({ panels: PANELS, first: "customers" });
const loginForm = $("#login-form");

const END_MESSAGES = {
  logout: "You are logged out.",
  expired: "Your admin session expired; log in again.",
  unauthorized: "Your admin session is no longer valid (expired or the password changed); log in again.",
};

function enterApp() {
  shell.enter(session);
  shell.showPanel();
  $("#main").focus({ preventScroll: true });
  pricedModels().then(addProviderChoices, () => {}); // a failed load is retried by the panels
}

function leaveApp(reason) {
  shell.leave();
  forgetSession();
  setStatus(shell.loginStatus, END_MESSAGES[reason] || "", reason === "logout" ? "ok" : "error");
  const password = $("#login-password");
  password.value = "";
  password.focus();
}

async function onLogin(event) {
  event.preventDefault();
  const password = $("#login-password").value;
  if (!password) {
    setStatus(shell.loginStatus, "Enter the admin password.", "error");
    $("#login-password").focus();
    return;
  }
  if (await shell.signIn(() => login(password))) enterApp();
}

function setupApiBase() {
  const form = $("#api-base-form");
  const status = $(".status", form);
  form.elements.namedItem("api_base").value = apiBase();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      const saved = setApiBase(fieldValue(form, "api_base"));
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
  shell.init();
  attachCustomerPickers();
  bindCentsHints();
  fillMonths();
  setupApiBase();
  onCustomerChange(updateSelectedLabel);
  loginForm.addEventListener("submit", onLogin);
  $("#logout-button").addEventListener("click", () => session.end("logout"));
  session.onEnd(leaveApp);
  if (session.token()) enterApp();
  else if (session.hadExpiredToken()) session.end("expired");
  else $("#login-password").focus();
}

boot();
