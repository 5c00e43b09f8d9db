// Keys: a customer's keys with their overrides and where each was last used; create sub-keys,
// edit a key's role and overrides, rotate, revoke. A new secret (creation or rotation) is
// shown once, above the table.

import { api } from "../api.js";
import { attachModelsEditor, modelsText, parseModels } from "../allowlist.js";
import {
  $,
  checkedValues,
  compactJson,
  fieldValue,
  fmtCents,
  h,
  intValue,
  revokedCell,
  setChecked,
  timeCell,
  yesNo,
} from "../dom.js";
import * as keyActions from "../key_actions.js";
import { customerLoads } from "../state.js";
import { PagedTable } from "../table.js";
import { requireCustomerId, setStatus, showSecret, submitForm } from "../ui.js";

const panel = $("#panel-keys");
const loadForm = $("#keys-load");
const createForm = $("#key-create");
const editCard = $("#key-editor");
const editForm = $("#key-edit");
const actionStatus = $("#keys-action-status");
const secretSlot = $("#keys-secret");
let table;
let modelsEditor;
let editModels;
let editing = null; // the key the editor shows
const loads = customerLoads(() => {
  secretSlot.replaceChildren();
  closeEditor();
});

const customerId = () => intValue(loadForm, "customer_id");

const INHERIT = () => h("span", { class: "muted" }, "inherit");

function inherit(value, render = String) {
  return value === null || value === undefined ? INHERIT() : render(value);
}

function listCell(value) {
  return h("td", { class: "wrap" }, value === null || value === undefined ? INHERIT() : compactJson(value));
}

function actionsCell(row) {
  const edit = h("button", { type: "button", class: "small" }, "Edit");
  edit.disabled = Boolean(row.revoked_at); // the server refuses to change a revoked key
  edit.setAttribute("aria-label", `Edit ${keyActions.keyName(row)}`);
  edit.addEventListener("click", () => openEditor(row));
  const buttons = keyActions.buttons(row, { rotate: rotateKey, revoke: revokeKey });
  return h("td", {}, h("div", { class: "actions" }, edit, buttons));
}

/** When and from which install the key last made a call ("never" before its first). */
function lastSeenCell(row) {
  if (!row.last_seen_at) return h("td", { class: "muted" }, "never");
  const cell = timeCell(row.last_seen_at, { stack: true });
  if (row.last_seen_install_id) cell.append(h("span", { class: "sub mono" }, row.last_seen_install_id));
  return cell;
}

// ---------------------------------------------------------------------------- editor

function closeEditor() {
  editing = null;
  editCard.hidden = true;
  setStatus($(".status", editForm), "");
}

/** The editor, filled from the key: each empty field is a setting the key inherits. */
function openEditor(row) {
  editing = row;
  const set = (name, value) => {
    editForm.elements.namedItem(name).value = value === null || value === undefined ? "" : String(value);
  };
  set("id", row.id);
  set("label", row.label);
  set("role", row.role);
  for (const name of ["monthly_cap_cents", "rpm_limit", "rpd_limit", "max_devices", "max_concurrent"]) set(name, row[name]);
  set("require_install_id", row.require_install_id);
  setChecked(editForm, "allowed_providers", row.allowed_providers || []);
  set("allowed_models", modelsText(row.allowed_models));
  editForm.elements.namedItem("monthly_cap_cents").dispatchEvent(new Event("input")); // the $ hint
  editModels.check();
  setStatus($(".status", editForm), "");
  $("#key-edit-title").textContent = `Edit ${keyActions.keyName(row)}${row.label ? ` “${row.label}”` : ""}`;
  editCard.hidden = false;
  editCard.scrollIntoView({ block: "nearest" });
  editForm.elements.namedItem("label").focus({ preventScroll: true });
}

/** Every setting, an empty field as null: the key then inherits the customer's. */
function editBody() {
  const require = fieldValue(editForm, "require_install_id");
  const providers = checkedValues(editForm, "allowed_providers");
  const body = {
    label: fieldValue(editForm, "label") || null,
    role: fieldValue(editForm, "role"),
    require_install_id: require === "" ? null : require === "true",
    allowed_providers: providers.length ? providers : null,
    allowed_models: parseModels(fieldValue(editForm, "allowed_models")),
  };
  for (const name of ["monthly_cap_cents", "rpm_limit", "rpd_limit", "max_devices", "max_concurrent"]) {
    body[name] = intValue(editForm, name);
  }
  return body;
}

async function saveKey(event) {
  event.preventDefault();
  if (!editing) return;
  const row = editing;
  const result = await submitForm(
    editForm,
    { read: editBody, invalid: "allowed_models", busy: "Saving the key…" },
    (body) => api("admin-keys", { method: "PATCH", query: { id: row.id }, body }),
  );
  if (!result) return;
  openEditor(result.item);
  setStatus($(".status", editForm), `Saved ${keyActions.keyName(result.item)}.`, "ok");
  await table.reload();
}

async function rotateKey(row, button) {
  const item = await keyActions.rotate(row, button, {
    status: actionStatus,
    question:
      `Rotate ${keyActions.keyName(row)}?\n\n` +
      "A new key with the same settings is created and this key is revoked at once: apps using it stop working until they get the new key.",
    send: () => api("admin-keys", { method: "POST", query: { id: row.id, action: "rotate" } }),
  });
  if (!item) return;
  showSecret(secretSlot, { title: `New key ${item.id} (replaces key ${row.id})`, secret: item.key });
  await table.reload();
}

async function revokeKey(row, button) {
  const send = () => api("admin-keys", { method: "DELETE", query: { id: row.id } });
  if (await keyActions.revoke(row, button, { status: actionStatus, send })) await table.reload();
}

/** The create body: only the fields the admin filled in (the rest inherit). */
function createBody() {
  const body = { customer_id: customerId(), role: fieldValue(createForm, "role") || "caller" };
  const label = fieldValue(createForm, "label");
  if (label) body.label = label;
  for (const name of ["monthly_cap_cents", "rpm_limit", "rpd_limit", "max_devices"]) {
    const value = intValue(createForm, name);
    if (value !== null) body[name] = value;
  }
  const require = fieldValue(createForm, "require_install_id");
  if (require) body.require_install_id = require === "true";
  const providers = checkedValues(createForm, "allowed_providers");
  if (providers.length) body.allowed_providers = providers;
  const models = parseModels(fieldValue(createForm, "allowed_models"));
  if (models) body.allowed_models = models;
  return body;
}

/** The create body, once a customer is chosen (else requireCustomerId says so: null). */
function readCreate() {
  const body = createBody();
  return requireCustomerId(loadForm, $(".status", createForm)) === null ? null : body;
}

async function createKey(event) {
  event.preventDefault();
  const result = await submitForm(
    createForm,
    { read: readCreate, invalid: "allowed_models", busy: "Creating the sub-key…" },
    (body) => api("admin-keys", { method: "POST", body }),
  );
  if (!result) return;
  const item = result.item;
  setStatus($(".status", createForm), `Created sub-key ${item.id} (…${item.key_last4}).`, "ok");
  createForm.reset();
  modelsEditor.check();
  showSecret(secretSlot, { title: `New sub-key ${item.id}${item.label ? ` “${item.label}”` : ""}`, secret: item.key });
  secretSlot.scrollIntoView({ block: "nearest" });
  await table.reload();
}

async function load() {
  if (requireCustomerId(loadForm, actionStatus) === null) return;
  loads.loaded({ customer_id: customerId() });
  if (editing && editing.customer_id !== customerId()) closeEditor();
  setStatus(actionStatus, "");
  await table.reload();
}

export default {
  name: "keys",
  init() {
    table = new PagedTable($("#keys-table"), {
      columns: [
        (row) => h("td", {}, h("strong", {}, String(row.id)), h("span", { class: "sub" }, row.kind)),
        (row) => h("td", { class: "mono" }, `…${row.key_last4}`),
        // The seed's columns stay as they were: the role rides under the label.
        (row) => h("td", {}, row.label || "", h("span", { class: "sub" }, `role: ${row.role}`)),
        (row) => h("td", { class: "num" }, inherit(row.monthly_cap_cents, fmtCents)),
        // The RPD override rides under the RPM one (the seed's columns stay as they were).
        (row) => h("td", { class: "num" }, inherit(row.rpm_limit), h("span", { class: "sub" }, "RPD ", inherit(row.rpd_limit))),
        (row) => h("td", { class: "num" }, inherit(row.max_devices)),
        (row) => h("td", {}, row.require_install_id === null ? INHERIT() : yesNo(row.require_install_id)),
        (row) => listCell(row.allowed_providers),
        (row) => listCell(row.allowed_models),
        (row) => revokedCell(row.revoked_at),
        (row) => timeCell(row.created_at, { stack: true }),
        actionsCell,
        lastSeenCell,
      ],
      rowClass: (row) => (row.revoked_at ? "revoked" : ""),
      fetchPage: (cursor) => api("admin-keys", { query: { customer_id: customerId(), limit: 50, cursor } }),
      empty: "This customer has no keys.",
      idle: "Choose a customer (click a row in Customers, or enter its ID) to see its keys.",
    });
    modelsEditor = attachModelsEditor($(".models-editor", createForm));
    loadForm.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    createForm.addEventListener("submit", createKey);
    editModels = attachModelsEditor($(".models-editor", editForm));
    editForm.addEventListener("submit", saveKey);
    $("[data-close]", editForm).addEventListener("click", closeEditor);
  },
  async show() {
    modelsEditor.load().catch(() => {});
    editModels.load().catch(() => {});
    if (loads.wanted({ customer_id: customerId() })) await load();
  },
  reset() {
    loads.forget();
    table.reset();
    secretSlot.replaceChildren();
    closeEditor();
  },
};
