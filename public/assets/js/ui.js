// Shared behaviour of actions: progress while they run, the API's own sentence next to
// the action when they fail, a form's submit as one action, secrets shown once with a copy
// button. Both pages use it; a page's own words come in as parameters.

import { $, $$, h } from "./dom.js";
import { reportError } from "./errors.js";
import { ApiError } from "./http.js";

export function setStatus(node, text, tone = "") {
  if (!node) return;
  node.textContent = text || "";
  node.className = `status ${tone}`.trim();
}

function clearInvalid(form) {
  if (!form) return;
  for (const control of $$("[aria-invalid]", form)) control.removeAttribute("aria-invalid");
}

/** Mark the control the server named in `field` (400 INVALID_INPUT) and move focus to it. */
function markInvalid(form, field) {
  if (!form || !field) return;
  const control = form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (!control) return;
  control.setAttribute("aria-invalid", "true");
  if (typeof control.focus === "function") control.focus();
}

/** The plain-words sentence for an error (the API's `error` text when it sent one). */
export function describe(error) {
  if (error instanceof ApiError) return error.message;
  return `Something went wrong in this page: ${error && error.message ? error.message : error}`;
}

export function showError(status, error, form) {
  setStatus(status, describe(error), "error");
  if (error instanceof ApiError) markInvalid(form, error.field);
  else reportError(error, { where: "action" });
}

/**
 * Run one user action: disable its button and say it is working, then show the outcome
 * in `status`. Returns the action's result, or undefined when it failed (already shown).
 */
export async function run({ button, status, form, busy = "Working…", success }, action) {
  clearInvalid(form);
  if (status) setStatus(status, busy, "busy");
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  try {
    const result = await action();
    if (status) {
      const text = typeof success === "function" ? success(result) : success;
      setStatus(status, text || "", text ? "ok" : "");
    }
    return result;
  } catch (error) {
    if (error && error.name === "AbortError") {
      setStatus(status, "Stopped.", "info");
      return undefined;
    }
    showError(status, error, form);
    return undefined;
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }
}

/** Copy text to the clipboard; falls back to selecting `node` for Ctrl+C. */
export async function copyText(text, node) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (node) {
      const range = document.createRange();
      range.selectNodeContents(node);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    return false;
  }
}

/**
 * A secret (a new key, a webhook signing secret) in `slot`, once: with a copy button and the
 * warning that it cannot be shown again. "I have stored it" removes it from the page (then
 * `onDone`, e.g. sign in again). `kept` says what Kaixu keeps instead, in the page's words.
 */
export function showSecret(slot, { title, secret, what = "key", kept = "stores only a hash", onDone = null }) {
  const code = h("code", { class: "secret-value", "data-secret": "" }, secret);
  const feedback = h("span", { class: "small", role: "status", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "primary" }, `Copy ${what}`);
  copy.addEventListener("click", async () => {
    const copied = await copyText(secret, code);
    feedback.textContent = copied ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.";
  });
  const done = h("button", { type: "button" }, "I have stored it");
  done.addEventListener("click", () => {
    slot.replaceChildren();
    if (onDone) onDone();
  });
  const box = h(
    "div",
    { class: "secret-box", role: "alert" },
    h("p", {}, h("strong", {}, title)),
    h("div", { class: "secret-row" }, code, copy, feedback),
    h("p", { class: "warning" }, `Copy it now: this ${what} is shown only once. Kaixu ${kept}, so it cannot be shown again.`),
    h("div", {}, done),
  );
  slot.replaceChildren(box);
  copy.focus();
}

/** The form's Customer ID, or null after asking for one next to the action. */
export function requireCustomerId(form, status) {
  const control = form.elements.namedItem("customer_id");
  const value = control ? control.value.trim() : "";
  if (/^\d+$/.test(value) && Number(value) > 0) return Number(value);
  setStatus(status, "Enter a Customer ID (or click a customer row in Customers) first.", "error");
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
  return null;
}

/**
 * A form's submit as one action: `read()` makes the body from the form (an Error it throws is
 * shown in the form's status and `invalid` names the control to mark; null means it has said
 * why already), then `send(body)` runs with the form's submit button and status. Returns what
 * `send` returned, or undefined when nothing was sent or it failed (already shown).
 */
export async function submitForm(form, { read, invalid, busy, success }, send) {
  const status = $(".status", form);
  let body;
  try {
    body = read();
  } catch (error) {
    setStatus(status, error.message, "error");
    if (invalid) form.elements.namedItem(invalid).setAttribute("aria-invalid", "true");
    return undefined;
  }
  if (body === null) return undefined;
  return run({ button: $("button[type=submit]", form), status, form, busy, success }, () => send(body));
}
