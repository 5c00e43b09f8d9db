// Keys: the account's keys; create one (its secret shown once), change a key's own limits,
// rotate (a new secret, the old one stops at once) or revoke (for good). Roles offered stop
// at admin: the owner (master) key is the operator's to issue.

import { $, fieldValue, fmtCents, h, intValue, revokedCell, timeCell } from "../dom.js";
import * as keyActions from "../key_actions.js";
import { loadOnce } from "../shell.js";
import { PagedTable } from "../table.js";
import { setStatus, submitForm } from "../ui.js";
import { api } from "./api.js";
import { centsToDollarText, parseDollars } from "./money.js";
import * as session from "./session.js";
import { forgetKeys, keyCell, showOnce } from "./ui.js";

const actionStatus = $("#keys-status");
const secretSlot = $("#keys-secret");
const createForm = $("#key-create");
const editCard = $("#key-edit-card");
const editForm = $("#key-edit");
let table;
const once = loadOnce(() => table.reload());
let editing = null; // the row whose limits the edit form shows

const MASTER_ROLE = "owner";
const INHERIT = () => h("span", { class: "muted" }, "account's");

function inherit(value, render = String) {
  return value === null || value === undefined ? INHERIT() : render(value);
}

function isOwn(row) {
  const who = session.who();
  return Boolean(who && who.key && Number(who.key.id) === Number(row.id));
}

function actionsCell(row) {
  const edit = h("button", { type: "button", class: "small" }, "Edit");
  edit.setAttribute("aria-label", `Edit ${keyActions.keyName(row)}`);
  edit.disabled = Boolean(row.revoked_at);
  edit.addEventListener("click", () => startEdit(row));
  const [rotate, revoke] = keyActions.buttons(row, { rotate: rotateKey, revoke: revokeKey });
  if (row.role === MASTER_ROLE) {
    revoke.disabled = true; // it would lock the account out: rotate a leaked master key instead
    revoke.title = "The master key cannot be revoked; rotate it to replace a leaked one.";
  }
  return h("td", {}, h("div", { class: "actions" }, edit, rotate, revoke));
}

/** A warning for the key this session signed in with: changing it ends the session. */
function ownWarning(row, then) {
  return isOwn(row) ? `\n\nYou signed in with this key: this session ends, and you sign in again ${then}.` : "";
}

async function rotateKey(row, button) {
  const item = await keyActions.rotate(row, button, {
    status: actionStatus,
    question:
      `Rotate ${keyActions.keyName(row)}?\n\n` +
      "A new key with the same settings is made and this one stops working at once: apps using it fail until they get the new one." +
      ownWarning(row, "with the new key"),
    send: () => api("customer-keys", { method: "POST", query: { id: row.id, action: "rotate" } }),
  });
  if (!item) return;
  forgetKeys();
  const title = `New key ${item.id}${item.label ? ` “${item.label}”` : ""} (replaces key ${row.id})`;
  if (!isOwn(row)) {
    showOnce(secretSlot, { title, secret: item.key });
    await table.reload();
    return;
  }
  // This session's key is gone: any further call would sign out and wipe the new secret
  // from the page, so nothing is loaded until the customer has stored it.
  setStatus(actionStatus, `Key ${row.id} was replaced by key ${item.id}: store the new key, then sign in again with it.`, "ok");
  showOnce(secretSlot, {
    title,
    secret: item.key,
    onDone: () => session.end("unauthorized", "Sign in again with the new key."),
  });
}

async function revokeKey(row, button) {
  const revoked = await keyActions.revoke(row, button, {
    status: actionStatus,
    warning: ownWarning(row, "with another key"),
    send: () => api("customer-keys", { method: "POST", query: { id: row.id, action: "revoke" } }),
  });
  if (!revoked) return;
  if (isOwn(row)) {
    session.end("unauthorized", "You revoked the key you signed in with; sign in with another key.");
    return;
  }
  forgetKeys();
  if (editing && editing.id === row.id) stopEdit();
  await table.reload();
}

/** Dollars from a form field, or throw with the field marked (the sentence goes in `status`). */
function dollarsField(form, name) {
  const control = form.elements.namedItem(name);
  try {
    return parseDollars(control.value);
  } catch (error) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
    throw error;
  }
}

function createBody() {
  const body = { role: fieldValue(createForm, "role") || "caller" };
  const label = fieldValue(createForm, "label");
  if (label) body.label = label;
  const cap = dollarsField(createForm, "monthly_cap_cents");
  if (cap !== null) body.monthly_cap_cents = cap;
  for (const name of ["rpm_limit", "max_devices"]) {
    const value = intValue(createForm, name);
    if (value !== null) body[name] = value;
  }
  return body;
}

async function createKey(event) {
  event.preventDefault();
  const result = await submitForm(createForm, { read: createBody, busy: "Creating the key…" }, (body) =>
    api("customer-keys", { method: "POST", body }),
  );
  if (!result) return;
  const item = result.item;
  setStatus($(".status", createForm), `Created key ${item.id} (…${item.key_last4}).`, "ok");
  createForm.reset();
  forgetKeys();
  showOnce(secretSlot, { title: `New key ${item.id}${item.label ? ` “${item.label}”` : ""} (${item.role})`, secret: item.key });
  secretSlot.scrollIntoView({ block: "nearest" });
  await table.reload();
}

// ---------------------------------------------------------------------------- edit

const NUMBER_FIELDS = ["rpm_limit", "rpd_limit", "max_devices", "max_concurrent"];

function startEdit(row) {
  editing = row;
  editCard.hidden = false;
  $("#key-edit-title").textContent = `Change key ${row.id} (…${row.key_last4})`;
  editForm.elements.namedItem("label").value = row.label || "";
  editForm.elements.namedItem("monthly_cap_cents").value = centsToDollarText(row.monthly_cap_cents);
  for (const name of NUMBER_FIELDS) editForm.elements.namedItem(name).value = row[name] ?? "";
  const require = row.require_install_id;
  editForm.elements.namedItem("require_install_id").value = require === null || require === undefined ? "" : String(require);
  setStatus($(".status", editForm), "");
  editForm.elements.namedItem("label").focus();
}

function stopEdit() {
  editing = null;
  editCard.hidden = true;
  editForm.reset();
}

/** Every field of the form: an empty one is null (the key then follows the account). */
function editBody() {
  const body = { label: fieldValue(editForm, "label") || null };
  body.monthly_cap_cents = dollarsField(editForm, "monthly_cap_cents");
  for (const name of NUMBER_FIELDS) body[name] = intValue(editForm, name);
  const require = fieldValue(editForm, "require_install_id");
  body.require_install_id = require === "" ? null : require === "true";
  return body;
}

async function saveEdit(event) {
  event.preventDefault();
  if (!editing) return;
  const row = editing;
  const result = await submitForm(editForm, { read: editBody, busy: `Saving key ${row.id}…` }, (body) =>
    api("customer-keys", { method: "PATCH", query: { id: row.id }, body }),
  );
  if (!result) return;
  forgetKeys();
  stopEdit();
  setStatus(actionStatus, `Saved key ${row.id} (…${row.key_last4}).`, "ok");
  await table.reload();
}

export default {
  name: "keys",
  init() {
    table = new PagedTable($("#keys-table"), {
      columns: [
        (row) => keyCell(row.id, row.key_last4, row.kind),
        (row) => h("td", {}, row.label || "", isOwn(row) ? h("span", { class: "sub" }, "signed in with this key") : null),
        (row) => row.role || "",
        (row) => h("td", { class: "num" }, inherit(row.monthly_cap_cents, fmtCents)),
        (row) => h("td", { class: "num" }, inherit(row.rpm_limit)),
        (row) => h("td", { class: "num" }, inherit(row.max_devices)),
        (row) => revokedCell(row.revoked_at),
        (row) => timeCell(row.created_at, { stack: true }),
        (row) => timeCell(row.last_seen_at, { stack: true }),
        actionsCell,
      ],
      rowClass: (row) => (row.revoked_at ? "revoked" : ""),
      fetchPage: (cursor) => api("customer-keys", { query: { limit: 50, cursor } }),
      empty: "No keys.",
      idle: "Loading…",
    });
    createForm.addEventListener("submit", createKey);
    editForm.addEventListener("submit", saveEdit);
    $("[data-edit-cancel]", editForm).addEventListener("click", stopEdit);
  },
  show: () => once.show(),
  reset() {
    once.forget();
    stopEdit();
    createForm.reset();
    setStatus($(".status", createForm), "");
    setStatus(actionStatus, "");
    secretSlot.replaceChildren();
    table.reset();
  },
};
